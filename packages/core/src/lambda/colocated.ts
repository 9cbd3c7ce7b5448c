import type { FunctionStage, Manifest, OnnxStage } from '../manifest/types.js';
import type { Item, Tensor } from '../tensor/types.js';
import type { BatchResult, ItemOutcome, StageRuntime } from '../runtime/types.js';
import { createFunctionRuntime } from '../runtime/function.js';
import { EnsembleError } from '../errors.js';
import { groupOf, placeStages } from './placement.js';

/**
 * The ONNX stage's runtime with the function stages the placement puts in
 * its function (lambda/placement.ts) run before it: the gateway sends the
 * group's inputs (by pipeline tensor name), each co-located stage runs on
 * the batch in turn, the session runs on what they made, and the answer
 * carries the session's outputs plus the tensors the group returns. An item
 * a co-located stage fails on fails alone, naming that stage. Without
 * co-located stages, `runtime` itself.
 *
 * In two steps: the co-located stages' modules load now (a stage function
 * starts this beside its weights' download and session, since a
 * pre-processing module may load a native library such as sharp), and the
 * returned function wraps the session's runtime once it exists.
 */
export async function loadColocatedStages(m: Manifest, onnx: OnnxStage): Promise<(runtime: StageRuntime) => StageRuntime> {
  const group = groupOf(placeStages(m), onnx.name);
  if (!group || group.colocated.length === 0) return (runtime) => runtime;
  const specs = group.colocated.map((c) => {
    const spec = m.stages.find((s) => s.name === c.stage);
    if (!spec || spec.kind !== 'function') throw new EnsembleError(`co-located stage '${c.stage}' of '${m.name}' is not a function stage`);
    return spec;
  });
  const stages: { spec: FunctionStage; rt: StageRuntime }[] = await Promise.all(
    specs.map(async (spec) => ({ spec, rt: await createFunctionRuntime(spec, m.name, m.dir) })),
  );
  return (runtime) => colocatedRuntime(group.returns, onnx, stages, runtime);
}

function colocatedRuntime(returns: string[], onnx: OnnxStage, stages: { spec: FunctionStage; rt: StageRuntime }[], runtime: StageRuntime): StageRuntime {
  const padAxis = onnx.batch.padAxis;

  return {
    async run(items: Item[], signal?: AbortSignal): Promise<BatchResult> {
      const t0 = performance.now();
      const tensors = items.map((it) => new Map<string, Tensor>(Object.entries(it)));
      const failed: (ItemOutcome | undefined)[] = items.map(() => undefined);
      const alive = () => items.map((_, i) => i).filter((i) => !failed[i]);
      const gather = (i: number, inputs: Record<string, string>, stage: string): Item | undefined => {
        const item: Item = {};
        for (const [local, tensor] of Object.entries(inputs)) {
          const t = tensors[i].get(tensor);
          if (!t) {
            failed[i] = { ok: false, error: `stage '${stage}': input '${tensor}' missing from the item`, code: 'bad_request' };
            return undefined;
          }
          item[local] = t;
        }
        return item;
      };

      for (const { spec, rt } of stages) {
        const idx: number[] = [];
        const batch: Item[] = [];
        for (const i of alive()) {
          const item = gather(i, spec.inputs, spec.name);
          if (item) { idx.push(i); batch.push(item); }
        }
        if (batch.length === 0) break;
        const r = await rt.run(batch, signal);
        r.outcomes.forEach((o, j) => {
          const i = idx[j];
          if (!o.ok) { failed[i] = { ok: false, error: `stage '${spec.name}': ${o.error}`, code: o.code }; return; }
          for (const [local, tensor] of Object.entries(spec.outputs)) {
            const t = o.items[0]?.[local];
            if (!t) { failed[i] = { ok: false, error: `stage '${spec.name}' did not produce output '${local}'`, code: 'stage_failed' }; return; }
            tensors[i].set(tensor, t);
          }
        });
      }

      // Items of one call had the same inputs' shapes, not necessarily the same pre-processed ones: one session run per shape.
      const runs = new Map<string, { idx: number[]; batch: Item[] }>();
      for (const i of alive()) {
        const item = gather(i, onnx.inputs, onnx.name);
        if (!item) continue;
        const key = Object.entries(item).map(([k, t]) => `${k}:${t.datatype}:${t.shape.map((d, a) => (a === padAxis ? '*' : d)).join('x')}`).join('|');
        const r = runs.get(key) ?? runs.set(key, { idx: [], batch: [] }).get(key)!;
        r.idx.push(i);
        r.batch.push(item);
      }
      const outcomes: ItemOutcome[] = items.map((_, i) => failed[i] ?? { ok: false, error: `stage '${onnx.name}' did not run`, code: 'stage_failed' });
      let result: BatchResult | undefined;
      for (const { idx, batch } of runs.values()) {
        const r = await runtime.run(batch, signal);
        // The session's first run says whether it was cold; its init and split come with it.
        result ??= r;
        r.outcomes.forEach((o, j) => {
          const i = idx[j];
          if (!o.ok) { outcomes[i] = o; return; }
          const out: Item = { ...o.items[0] };
          for (const t of returns) out[t] = tensors[i].get(t)!;
          outcomes[i] = { ok: true, items: [out] };
        });
      }
      // The group's own compute: the co-located stages and the session, as one stage call.
      return { ...(result ?? { coldStart: false }), outcomes, computeMs: performance.now() - t0 };
    },
    async close() {
      await Promise.all([runtime.close(), ...stages.map((s) => s.rt.close())]);
    },
  };
}
