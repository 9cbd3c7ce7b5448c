import { availableParallelism } from 'node:os';
import type { Manifest } from '../manifest/types.js';
import type { Tensor, Item } from '../tensor/types.js';
import type { StageRuntime } from '../runtime/types.js';
import { createFunctionRuntime } from '../runtime/function.js';
import { createOnnxRuntime } from '../runtime/onnx.js';
import { LineageNode } from '../executor/lineage.js';
import { emptyRows, splitRows, stackRows } from '../tensor/rows.js';
import { EnsembleError, errorCode } from '../errors.js';

export interface SequentialRunner {
  run(inputs: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  close(): Promise<void>;
}

/**
 * The pipeline's stages run one after another in this process, one item at a
 * time, with no gateway, batching or records: the "same models, plain loop"
 * baseline. ONNX sessions get `threads` intra-op threads (default: every
 * core, as ONNX Runtime's own default).
 */
export async function createSequentialRunner(m: Manifest, opts: { threads?: number } = {}): Promise<SequentialRunner> {
  const threads = opts.threads ?? availableParallelism();
  const runtimes = new Map<string, StageRuntime>();
  for (const s of m.stages) {
    if (s.kind === 'onnx') {
      if (!s.weights.source) throw new EnsembleError(`${m.file}: stage '${s.name}': no weights.source to run from`);
      runtimes.set(s.name, await createOnnxRuntime({ stage: { ...s, scale: { ...s.scale, threads } }, modelPath: s.weights.source }));
    } else {
      runtimes.set(s.name, await createFunctionRuntime(s, m.name, m.dir));
    }
  }
  const level = (stage: string) => Math.max(0, ...Object.values(m.stages.find((s) => s.name === stage)!.inputs).map((t) => m.levels[t] ?? 0));
  return {
    async run(inputs) {
      const split = Object.fromEntries(m.inputs.map((spec) => [spec.name, splitRows(inputs[spec.name])]));
      const rows = Math.min(...Object.values(split).map((r) => r.length));
      const roots = Array.from({ length: rows }, (_, i) => {
        const n = new LineageNode([i]);
        for (const spec of m.inputs) n.tensors.set(spec.name, split[spec.name][i]);
        return n;
      });
      for (const name of m.order) {
        const stage = m.stages.find((s) => s.name === name)!;
        for (const node of roots.flatMap((r) => r.atLevel(level(name)))) {
          const item: Item = {};
          for (const [local, t] of Object.entries(stage.inputs)) {
            const v = node.lookup(t);
            if (!v) throw new EnsembleError(`stage '${name}': tensor '${t}' missing for item ${node.key}`);
            item[local] = v;
          }
          const { outcomes } = await runtimes.get(name)!.run([item]);
          const o = outcomes[0];
          if (!o.ok) throw new EnsembleError(`stage '${name}': ${o.error}`, errorCode(o.code ?? 'stage_failed'));
          const put = (out: Item, target: LineageNode) => {
            for (const [local, t] of Object.entries(stage.outputs)) target.tensors.set(t, out[local]);
          };
          if (stage.kind === 'function' && stage.fanout) {
            o.items.forEach((out, j) => {
              const child = new LineageNode([...node.path, j], node);
              node.children.push(child);
              put(out, child);
            });
          } else {
            put(o.items[0], node);
          }
        }
      }
      const out: Record<string, Tensor> = {};
      for (const spec of m.outputs) {
        const parts = roots.flatMap((r) => r.atLevel(m.levels[spec.name] ?? 0)).map((n) => n.tensors.get(spec.name)!);
        out[spec.name] = parts.length ? stackRows(parts) : emptyRows(spec.datatype, spec.shape.slice(1));
      }
      return out;
    },
    async close() {
      for (const r of runtimes.values()) await r.close();
    },
  };
}
