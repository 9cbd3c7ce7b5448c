import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { OnnxStage } from '../manifest/types.js';
import type { BatchInput, OnnxRuntime, StageBatching } from '../runtime/onnx.js';
import type { BatchResult, StageRuntime } from '../runtime/types.js';
import type { Item } from '../tensor/types.js';
import type { ContextInit, ItemAnswer, RunHeader, WorkerTimes } from './worker-protocol.js';
import type { Frame, PayloadWriter } from './frames.js';
import { addTensor, readGroup, type TensorMeta } from './tensor-frames.js';
import { loadColocatedStages } from '../placement/colocated.js';
import { setStageModuleLoader } from '../runtime/function.js';
import { markUsage, usageSince } from '../runtime/process-usage.js';
import { EnsembleError } from '../errors.js';

/**
 * A stage worker's function stages, run around its session
 * (placement/colocated.ts), for the worker pool's placement. The pool numbers
 * each pipeline sharing the worker (its context: the stages see its name and
 * folder); the worker loads the stages once per context, and keeps a failed
 * load as that context's answer, so one pipeline's broken module fails its
 * own batches only.
 *
 * Modules load with `require`: the worker runs tsx's CommonJS hook only
 * (stage-worker-entry.cjs), which compiles a TypeScript module and its
 * imports. A plain ES module that cannot be required is imported instead; a
 * TypeScript one with top-level await cannot load here (`placement: gateway`
 * keeps its stage in the gateway).
 */
export class ColocatedWorker {
  private readonly contexts = new Map<number, Promise<Wrap>>();
  /** Each session's co-located runtime per context, made on its first batch. */
  private readonly runtimes = new Map<OnnxRuntime, Map<number, StageRuntime>>();
  /** What the session's runs of the batch under way cost, summed (a batch may run it once per pre-processed shape). */
  private readonly sessionRuns = { ms: 0, cpuMs: 0 };

  constructor(private readonly stage: OnnxStage, private readonly batching: StageBatching) {
    setStageModuleLoader(loadModule);
  }

  /** Load a context's stages (again, if it was loaded before); rejects with why they cannot load. */
  add(c: ContextInit): Promise<void> {
    const loading = loadColocatedStages(c.manifest, this.stage, c.group);
    loading.catch(() => undefined);
    this.contexts.set(c.id, loading);
    for (const own of this.runtimes.values()) own.delete(c.id);
    return loading.then(() => undefined);
  }

  /**
   * A batch through the context's stages and the session: the frame's groups
   * become the items (a per-request input, sent once, is every item's), and
   * each item is answered on its own: an item a stage failed on, or whose
   * outputs cannot be written, fails alone.
   */
  async run(frame: Frame<RunHeader>, session: OnnxRuntime, payload: PayloadWriter): Promise<{ items: ItemAnswer[]; times: Pick<WorkerTimes, 'computeMs' | 'sessionMs' | 'computeCpuMs' | 'colocated'> }> {
    const h = frame.header;
    const id = h.context ?? 0;
    if (h.colocated) void this.add(h.colocated).catch(() => undefined);
    const loading = this.contexts.get(id);
    if (!loading) throw new EnsembleError(`no co-located stages for context ${id}`);
    const wrap = await loading;
    const items: Item[] = Array.from({ length: h.n }, () => ({}));
    for (const [name, meta] of Object.entries(h.inputs)) {
      const { parts } = readGroup(frame.payload, meta, `input '${name}'`);
      if (parts.length !== h.n && parts.length !== 1) throw new EnsembleError(`input '${name}': ${parts.length} tensors for ${h.n} items`);
      for (let i = 0; i < h.n; i++) items[i][name] = parts.length === 1 ? parts[0] : parts[i];
    }
    this.sessionRuns.ms = 0;
    this.sessionRuns.cpuMs = 0;
    const result: BatchResult = await this.runtimeFor(session, id, wrap).run(items);
    const answers = result.outcomes.map((o): ItemAnswer => {
      if (!o.ok) return o.code ? { ok: false, error: o.error, code: o.code } : { ok: false, error: o.error };
      try {
        const outputs: Record<string, TensorMeta> = {};
        for (const [name, t] of Object.entries(o.items[0])) outputs[name] = addTensor(payload, t);
        return { ok: true, outputs };
      } catch (e) {
        return { ok: false, error: `its outputs cannot be sent: ${e instanceof Error ? e.message : String(e)}`, code: 'stage_failed' };
      }
    });
    const times: Pick<WorkerTimes, 'computeMs' | 'sessionMs' | 'computeCpuMs' | 'colocated'> = {
      computeMs: result.computeMs, sessionMs: this.sessionRuns.ms, computeCpuMs: this.sessionRuns.cpuMs,
    };
    if (result.colocated) times.colocated = result.colocated;
    return { items: answers, times };
  }

  /**
   * The session as the co-located runtime calls it: items stacked and split
   * here, its CPU measured around session.run alone (the model's own work,
   * as the worker measures it without co-located stages).
   */
  private runtimeFor(session: OnnxRuntime, id: number, wrap: Wrap): StageRuntime {
    const own = this.runtimes.get(session) ?? this.runtimes.set(session, new Map()).get(session)!;
    let g = own.get(id);
    if (!g) {
      const inputNames = Object.keys(this.stage.inputs);
      const timed: StageRuntime = {
        close: () => session.close(),
        run: async (batch: Item[]) => {
          const inputs: Record<string, BatchInput> = {};
          for (const name of inputNames) inputs[name] = { parts: batch.map((it) => it[name]) };
          const feeds = this.batching.stack(inputs);
          const before = markUsage();
          const { outputs, ...rest } = await session.runBatch(feeds, batch.length);
          this.sessionRuns.cpuMs += usageSince(before).cpuMs;
          this.sessionRuns.ms += rest.computeMs;
          const rows = this.batching.split(outputs, batch.length);
          return { outcomes: rows.map((row) => ({ ok: true as const, items: [row] })), ...rest };
        },
      };
      g = wrap(timed);
      own.set(id, g);
    }
    return g;
  }
}

type Wrap = (rt: StageRuntime) => StageRuntime;

// Stage modules are named by absolute paths: the base only has to be some file path.
const requireFile = createRequire(join(process.cwd(), 'stage-module'));
function loadModule(file: string): Promise<unknown> {
  try {
    return Promise.resolve(requireFile(file));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE') return import(pathToFileURL(file).href);
    throw e;
  }
}
