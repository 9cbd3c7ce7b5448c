import { availableParallelism } from 'node:os';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import type { Tensor, Item } from '@ensemble/core/tensor/types.js';
import type { StageRuntime } from '@ensemble/core/runtime/types.js';
import { createFunctionRuntime } from '@ensemble/core/runtime/function.js';
import { createOnnxRuntime } from '@ensemble/core/runtime/onnx.js';
import { LineageNode } from '@ensemble/core/executor/lineage.js';
import { joinOutputs } from '@ensemble/core/executor/join.js';
import { stageLineage } from '@ensemble/core/manifest/dag.js';
import { splitRows } from '@ensemble/core/tensor/rows.js';
import { EnsembleError, errorCode } from '@ensemble/core/errors.js';

export interface SequentialRunner {
  run(inputs: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  /**
   * CPU time (ms, user + system of this process, every thread) each stage has
   * taken so far: with nothing else running, one stage at a time, that is the
   * stage's own work.
   */
  stageCpuMs(): Record<string, number>;
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
  const cpu: Record<string, number> = Object.fromEntries(m.stages.map((s) => [s.name, 0]));
  for (const s of m.stages) {
    if (s.kind === 'onnx') {
      if (!s.weights.source) throw new EnsembleError(`${m.file}: stage '${s.name}': no weights.source to run from`);
      runtimes.set(s.name, await createOnnxRuntime({ stage: { ...s, scale: { ...s.scale, threads } }, modelPath: s.weights.source }));
    } else {
      runtimes.set(s.name, await createFunctionRuntime(s, m.name, m.dir));
    }
  }
  return {
    async run(inputs) {
      const split = Object.fromEntries(m.inputs.map((spec) => [spec.name, splitRows(inputs[spec.name])]));
      const rows = Math.min(...Object.values(split).map((r) => r.length));
      const roots = Array.from({ length: rows }, (_, i) => {
        const n = new LineageNode(i);
        for (const spec of m.inputs) n.tensors.set(spec.name, split[spec.name][i]);
        return n;
      });
      for (const name of m.order) {
        const stage = m.stages.find((s) => s.name === name)!;
        for (const node of roots.flatMap((r) => r.at(stageLineage(m, stage)))) {
          const item: Item = {};
          for (const [local, t] of Object.entries(stage.inputs)) {
            const v = node.lookup(t);
            if (!v) throw new EnsembleError(`stage '${name}': tensor '${t}' missing for item ${node.key}`);
            item[local] = v;
          }
          const c0 = process.cpuUsage();
          const { outcomes } = await runtimes.get(name)!.run([item]);
          const c = process.cpuUsage(c0);
          cpu[name] += (c.user + c.system) / 1000;
          const o = outcomes[0];
          if (!o.ok) throw new EnsembleError(`stage '${name}': ${o.error}`, errorCode(o.code ?? 'stage_failed'));
          const put = (out: Item, target: LineageNode) => {
            for (const [local, t] of Object.entries(stage.outputs)) target.tensors.set(t, out[local]);
          };
          if (stage.kind === 'function' && stage.fanout) {
            node.addChildren(name, o.items.length).forEach((child, j) => put(o.items[j], child));
          } else {
            put(o.items[0], node);
          }
        }
      }
      return joinOutputs(m, roots, m.outputs.map((o) => o.name));
    },
    stageCpuMs: () => ({ ...cpu }),
    async close() {
      for (const r of runtimes.values()) await r.close();
    },
  };
}
