import type { FunctionStage, Manifest, OnnxStage } from '../manifest/types.js';
import type { Item, Tensor } from '../tensor/types.js';
import type { BatchResult, ColocatedRun, ItemOutcome, StageRuntime } from '../runtime/types.js';
import { createFunctionRuntime } from '../runtime/function.js';
import { EnsembleError, StageError } from '../errors.js';
import type { StageGroup } from './placement.js';

/**
 * The ONNX stage's runtime with the function stages the placement puts in
 * its function or its worker process (placement.ts decides `group`): the gateway sends the group's inputs
 * (by pipeline tensor name), each co-located stage before the model runs on
 * the batch in turn, the session runs on what they made, the stages placed
 * after it run on its outputs, and the answer carries the session's outputs
 * (less those kept in the function) plus the tensors the group returns. An
 * item a co-located stage fails on fails alone, naming that stage. Without
 * co-located stages, `runtime` itself.
 *
 * In two steps: the co-located stages' modules load now (a stage function
 * starts this beside its weights' download and session, since a
 * pre-processing module may load a native library such as sharp), and the
 * returned function wraps the session's runtime once it exists.
 */
export async function loadColocatedStages(
  m: Pick<Manifest, 'name' | 'dir' | 'stages'>, onnx: OnnxStage, group: StageGroup | undefined,
): Promise<(runtime: StageRuntime) => StageRuntime> {
  if (!group || group.colocated.length === 0) return (runtime) => runtime;
  const loaded = await Promise.all(group.colocated.map(async (c) => {
    const spec = m.stages.find((s) => s.name === c.stage);
    if (!spec || spec.kind !== 'function') throw new EnsembleError(`co-located stage '${c.stage}' of '${m.name}' is not a function stage`);
    return { spec, rt: await createFunctionRuntime(spec, m.name, m.dir), after: c.after === true };
  }));
  const before = loaded.filter((s) => !s.after);
  const after = loaded.filter((s) => s.after);
  return (runtime) => colocatedRuntime(group, onnx, before, after, runtime);
}

type Colocated = { spec: FunctionStage; rt: StageRuntime };

function colocatedRuntime(group: StageGroup, onnx: OnnxStage, before: Colocated[], after: Colocated[], runtime: StageRuntime): StageRuntime {
  const padAxis = onnx.batch.padAxis;
  const kept = new Set(group.kept);

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
      /** A stage's answer for item i joins its tensors by pipeline name; false (the item failed) when an output is missing. */
      const absorb = (i: number, stage: string, outputs: Record<string, string>, answer: Item | undefined): boolean => {
        for (const [local, tensor] of Object.entries(outputs)) {
          const t = answer?.[local];
          if (!t) { failed[i] = { ok: false, error: `stage '${stage}' did not produce output '${local}'`, code: 'stage_failed' }; return false; }
          tensors[i].set(tensor, t);
        }
        return true;
      };
      const ran: ColocatedRun[] = [];
      /** Each stage on the batch's live items in turn; what it makes joins the items' tensors, by pipeline name. */
      const runStages = async (list: Colocated[]) => {
        for (const { spec, rt } of list) {
          const idx: number[] = [];
          const batch: Item[] = [];
          for (const i of alive()) {
            const item = gather(i, spec.inputs, spec.name);
            if (item) { idx.push(i); batch.push(item); }
          }
          if (batch.length === 0) break;
          const r = await rt.run(batch, signal);
          ran.push({ stage: spec.name, items: batch.length, failedItems: r.outcomes.filter((o) => !o.ok).length, computeMs: r.computeMs });
          r.outcomes.forEach((o, j) => {
            const i = idx[j];
            if (!o.ok) { failed[i] = { ok: false, error: `stage '${spec.name}': ${o.error}`, code: o.code }; return; }
            absorb(i, spec.name, spec.outputs, o.items[0]);
          });
        }
      };

      await runStages(before);
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
      const own: (Item | undefined)[] = items.map(() => undefined);
      let result: BatchResult | undefined;
      const groups = [...runs.values()];
      for (const { idx, batch } of groups) {
        let r: BatchResult;
        try {
          r = await runtime.run(batch, signal);
        } catch (e) {
          // Items of several shapes (the gateway batches any for this function): the run of one shape failing
          // fails its items, not the others', which may be other requests'. A batch of one shape throws as it did.
          if (groups.length === 1 || signal?.aborted) throw e;
          const why = e instanceof Error ? e.message : String(e);
          // A StageError already names the stage; its code, as a function stage's error keeps its own (runtime/function.ts).
          const error = e instanceof StageError ? why : `stage '${onnx.name}': ${why}`;
          for (const i of idx) failed[i] = { ok: false, error, code: e instanceof EnsembleError ? e.code : 'stage_failed' };
          continue;
        }
        // The session's first run says whether it was cold; its init and split come with it.
        result ??= r;
        r.outcomes.forEach((o, j) => {
          const i = idx[j];
          if (!o.ok) { failed[i] = o; return; }
          if (absorb(i, onnx.name, onnx.outputs, o.items[0])) own[i] = o.items[0];
        });
      }
      await runStages(after);
      const outcomes = items.map((_, i): ItemOutcome => {
        if (failed[i]) return failed[i]!;
        if (!own[i]) return { ok: false, error: `stage '${onnx.name}' did not run`, code: 'stage_failed' };
        const out: Item = {};
        for (const [local, t] of Object.entries(own[i]!)) if (!kept.has(onnx.outputs[local])) out[local] = t;
        for (const t of group.returns) out[t] = tensors[i].get(t)!;
        return { ok: true, items: [out] };
      });
      // The group's own compute: the co-located stages and the session, as one stage call.
      return { ...(result ?? { coldStart: false }), outcomes, computeMs: performance.now() - t0, colocated: ran };
    },
    async close() {
      await Promise.all([runtime.close(), ...before.map((s) => s.rt.close()), ...after.map((s) => s.rt.close())]);
    },
  };
}
