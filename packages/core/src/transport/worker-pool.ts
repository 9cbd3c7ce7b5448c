import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Manifest, OnnxStage } from '../manifest/types.js';
import type { Item, Tensor } from '../tensor/types.js';
import type { BatchResult, ColdStartSplit, ItemOutcome } from '../runtime/types.js';
import type { WeightStore, WeightTiming } from '../storage/types.js';
import { isStageOf, stageKey, type StageHealth, type StageTransport } from './types.js';
import { DATA_FD, type ColocatedInit, type FromWorker, type ResultHeader, type RunHeader, type ToWorker } from './worker-protocol.js';
import { FrameReader, PayloadWriter, writeFrame, type Frame } from './frames.js';
import { addGroup, readTensor, type GroupMeta } from './tensor-frames.js';
import { stageBatching, type StageBatching } from '../runtime/onnx.js';
import type { TraceCarrier } from '../observability/trace-context.js';
import { EnsembleError, NotReadyError, StageError, TimeoutError, errorCode } from '../errors.js';
import { InProcessTransport } from './in-process.js';
import { abortReason, untilAborted } from '../deadline.js';
import type { Observer } from '../observability/events.js';
import { gatewayView, groupOf, placeStages, type Placement } from '../placement/placement.js';

const ENTRY = fileURLToPath(new URL('./stage-worker-entry.cjs', import.meta.url));

/**
 * A worker's environment: the pool's, plus glibc's mmap threshold fixed at its own starting value (128 KiB)
 * for a worker that runs the model alone. By default glibc raises the threshold to the size of every large
 * block freed, so after the model file and its parsed copy are freed, later large blocks come from the heap
 * and what session creation freed stays resident (about 10 to 25 MB a worker). Fixed, blocks over 128 KiB
 * are mapped and unmapped on their own; ONNX Runtime's arena keeps what session.run uses, so runs do not
 * map afresh. A worker that also runs function stages beside the model (`colocated`) keeps glibc's dynamic
 * threshold: those stages make large JavaScript arrays every batch (detect's pre-processing, 7 to 11 MB of
 * FP32 a page), and under a fixed threshold each one is mapped afresh and page-faulted in, which cost the
 * detect worker about 6 ms of CPU a page. The price is memory at idle: detect 5 MB more, each OCR
 * recogniser 17 MB (docs/benchmarks.md, the twelfth pass). Other C libraries ignore the variable; one set
 * by the user wins.
 */
export function workerEnv(colocated: boolean, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return colocated ? { ...env } : { MALLOC_MMAP_THRESHOLD_: String(128 * 1024), ...env };
}

/** A batch written to a worker, waiting for its answer. */
interface InFlight {
  id: number;
  /** Items in the batch: the rows the outputs are split into. */
  n: number;
  /** performance.now() before its frame was written. */
  sentAt: number;
  /** This process's time laying the tensors out (before a worker was taken) and writing the frame (ms). */
  prepMs: number;
  writeMs: number;
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: ChildProcess;
  /** The worker's data pipe (its fd DATA_FD): batches out, answers in, as frames. */
  data: Socket;
  ready: Promise<number>;
  /** The batch it is running, if any. */
  current?: InFlight;
  /** The first result after a (re)start is a cold start: from the worker's start to its session being ready. */
  initMs?: number;
  /** Where that start went: the weights (resolved here) and the session (made in the worker). */
  split?: ColdStartSplit;
  weights?: WeightTiming;
  /** Set once the worker reported its session ready. */
  started?: boolean;
  /** The co-located stages' contexts (PoolGroup.contexts) the worker has been sent. */
  contexts?: Set<number>;
}

interface StagePool {
  /** What it is keyed by in the transport: identical stages of any pipeline get the same key. */
  key: string;
  /** The stages it serves, by stageKey; the pool closes when the last one unloads. */
  users: Map<string, OnnxStage>;
  /** The stage its workers are started with (one of its users'). */
  stage: OnnxStage;
  modelPath: string;
  slots: Slot[];
  waiting: Waiter[];
  /** Workers in a row that died before their session was ready. */
  failedStarts: number;
  /** Set when workers keep failing to start and none is serving: batches get 503 until one starts. */
  broken?: EnsembleError;
  /** The next start attempt of a stage that keeps failing, and how many came before it. */
  retry?: { timer: NodeJS.Timeout; at: number };
  retries: number;
  /** Resolves when its first workers are ready; what every user's load() waits for. */
  loaded: Promise<void>;
  /** Its last user unloaded: its workers' exits are expected, nothing respawns. */
  closed?: boolean;
  /** Its batches in flight, for an unload to wait for. */
  active: Set<Promise<unknown>>;
  /** How its batches are stacked and split: the gateway splits a worker's whole outputs per item. */
  batching: StageBatching;
  usage: StageUsage;
  /** The function stages its workers run around the model, if any, and the stage as the executor sees it then. */
  colocated?: PoolGroup;
}

/**
 * A pool's co-located stages. Pipelines whose stages are the same (the same
 * modules, options, inputs and outputs) share it, but each stage runs with
 * its own pipeline's context (name, folder): a worker holds one set of the
 * stages per context. A context goes when its last user unloads, so a
 * restarted worker loads only what is still served.
 */
interface PoolGroup {
  /** The stage as the executor walks it: the group's inputs and outputs. */
  view: OnnxStage;
  contexts: Map<number, ColocatedInit>;
  /** Each user's (stageKey) context id. */
  contextOf: Map<string, number>;
  nextId: number;
}

/** One user's co-located stages, if its group has any. */
interface UserGroup {
  init: ColocatedInit;
  view: OnnxStage;
}

/**
 * What a stage's batches have cost so far through this transport, summed
 * (ms): for the benchmark and diagnostics. A pool shared by several
 * pipelines' stages counts all their batches.
 */
export interface StageUsage {
  batches: number;
  items: number;
  /** Wall time of session.run. */
  computeMs: number;
  /**
   * CPU time of session.run: the worker process's (every thread) while it
   * ran. For an inline stage the lesser of its wall time and the gateway's
   * CPU over the call, each of which is at least what it used.
   */
  computeCpuMs: number;
  /** The transfer split's parts (TransferSplit). */
  serializeMs: number;
  ipcMs: number;
  /** CPU time of the workers in the function stages co-located with the model (0 without any). */
  colocatedCpuMs: number;
}

function noUsage(): StageUsage {
  return { batches: 0, items: 0, computeMs: 0, computeCpuMs: 0, serializeMs: 0, ipcMs: 0, colocatedCpuMs: 0 };
}

interface Waiter { give: (s: Slot) => void; fail: (e: Error) => void }

export interface WorkerPoolOptions {
  /** Told of every worker that ends unasked and is replaced. */
  observer?: Observer;
  /** Cores the workers' batches share when the pool chooses their intra-op threads (default: this machine's). */
  cores?: number;
  /**
   * Run function stages in the worker of the ONNX stage they feed, or whose
   * outputs they read, where that shrinks what crosses the pipe (default
   * true; see `view`). false: every function stage runs in the gateway.
   */
  colocate?: boolean;
}

export interface CloseOptions {
  /**
   * true (the default): let batches in flight finish, each bounded by its own
   * deadline, then stop the workers. false: fail them at once with 503 and
   * kill their workers.
   */
  drain?: boolean;
}

/** Workers that fail to start this many times in a row: the stage stops respawning at once and backs off. */
const MAX_FAILED_STARTS = 3;
/**
 * Then it tries again after 1 s, doubling up to a minute, for as long as it
 * takes: the cause may pass (memory pressure, a full disk), and a stage that
 * gave up for good would need the whole server restarted.
 */
export const RESTART_BACKOFF_MS = { first: 1_000, max: 60_000 } as const;

/**
 * Local transport: each ONNX stage is `instances` worker processes, each with
 * its own session and `threads` intra-op threads. A worker that crashes or
 * passes the stage timeout is killed and replaced; only its in-flight batch
 * fails. Processes, not threads: a thread cannot be stopped inside a native
 * session.run without aborting the gateway, and a native crash in a thread
 * would take the gateway with it.
 *
 * A stage with `scale.isolation: inline` gives that up for speed: its
 * sessions live in this process (InProcessTransport), so a batch costs no
 * copy to and from a worker — what dominates a stage whose session.run takes
 * microseconds — but session.run shares the gateway's event loop and a crash
 * or hang in it is the gateway's.
 */
export class WorkerPoolTransport implements StageTransport {
  readonly kind = 'worker-pool';
  /** By poolKey(): stages that would run the same session share a pool. */
  private readonly pools = new Map<string, StagePool>();
  /** stageKey(pipeline, stage) -> the pool serving it. */
  private readonly routes = new Map<string, StagePool>();
  private readonly inline: InProcessTransport;
  private readonly inlineStages = new Set<string>();
  /** Inline stages' usage, by stageKey. */
  private readonly inlineUsage = new Map<string, StageUsage>();
  private nextId = 1;
  /** No new batches, no respawning: close() was called. */
  private closing = false;
  /** The workers are being stopped: their exits are expected. */
  private stopping = false;
  /** Aborted by close({ drain: false }): every batch in flight listens to it. */
  private readonly shutdown = new AbortController();
  /** Batches in flight, for close() to wait for. */
  private readonly active = new Set<Promise<unknown>>();

  private readonly cores: number;
  /** Each loaded manifest's placement and the view the executor walks, made once. */
  private readonly placements = new WeakMap<Manifest, { placement: Placement; view: Manifest }>();

  constructor(private readonly weights: WeightStore, private readonly opts: WorkerPoolOptions = {}) {
    this.inline = new InProcessTransport(weights);
    this.cores = opts.cores ?? availableParallelism();
    // Every batch in flight or waiting for a worker listens to it.
    setMaxListeners(0, this.shutdown.signal);
  }

  /**
   * The DAG the executor walks: a function stage runs in the worker of the
   * ONNX stage it feeds when that shrinks what crosses the pipe (OCR's
   * detect-pre, whose 11 MB of floats for a page are four times the pixels
   * it reads), or of the stage whose outputs it reads when the manifest
   * marks it `placement: with_model` (detect-post: a few boxes cross back
   * instead of the probability map). The rule is Lambda's
   * (placement/placement.ts) without running a stage in both places: a
   * worker is on this machine, where bytes cost less than doing a stage's
   * work twice. Inline stages take none (their sessions are in the gateway).
   */
  view(manifest: Manifest): Manifest {
    return this.placed(manifest).view;
  }

  placement(manifest: Manifest): Placement {
    return this.placed(manifest).placement;
  }

  private placed(manifest: Manifest): { placement: Placement; view: Manifest } {
    let p = this.placements.get(manifest);
    if (!p) {
      const placement = poolPlacement(manifest, this.opts.colocate ?? true);
      p = { placement, view: gatewayView(manifest, placement) };
      this.placements.set(manifest, p);
    }
    return p;
  }

  async load(manifest: Manifest, address = manifest.name): Promise<void> {
    const { placement, view } = this.placed(manifest);
    const inline = manifest.stages.filter((s) => s.kind === 'onnx' && s.scale.isolation === 'inline');
    if (inline.length) {
      await this.inline.load({ ...manifest, stages: inline }, address);
      for (const s of inline) this.inlineStages.add(stageKey(address, s.name));
    }
    for (const stage of manifest.stages) {
      if (stage.kind !== 'onnx' || stage.scale.isolation === 'inline') continue;
      const user = stageKey(address, stage.name);
      const group = groupOf(placement, stage.name);
      const colocated: UserGroup | undefined = group && group.colocated.length > 0 ? {
        init: { manifest: { name: manifest.name, dir: manifest.dir, stages: manifest.stages.filter((s) => group.colocated.some((c) => c.stage === s.name)) }, group },
        view: view.stages.find((s): s is OnnxStage => s.name === stage.name && s.kind === 'onnx')!,
      } : undefined;
      // A second version of a pipeline (another address) joins the pools of its unchanged stages.
      const key = poolKey(address, stage, colocated);
      // Loading a pipeline again moves its stage to the pool its manifest now asks for.
      const before = this.routes.get(user);
      if (before && before.key !== key) await this.detach(before, user);
      let pool = this.pools.get(key);
      if (!pool) {
        const at = performance.now();
        const modelPath = await this.weights.resolve(stage.weights.key, stage.weights.sha256);
        // The first workers' cold start began with this resolve: it may have downloaded the weights.
        const loading = { at, weights: this.weights.timing?.(stage.weights.sha256) };
        const created: StagePool = {
          key, users: new Map(), stage, modelPath, slots: [], waiting: [], failedStarts: 0, retries: 0, loaded: Promise.resolve(), active: new Set(),
          batching: stageBatching(stage), usage: noUsage(),
        };
        if (colocated) created.colocated = { view: colocated.view, contexts: new Map([[0, colocated.init]]), contextOf: new Map([[user, 0]]), nextId: 1 };
        for (let i = 0; i < stage.scale.instances; i++) created.slots.push(this.spawn(created, loading));
        created.loaded = Promise.all(created.slots.map((s) => s.ready)).then(() => undefined);
        this.pools.set(key, created);
        pool = created;
      }
      // A pipeline loaded again: respawns follow its new manifest (its weights key may have moved).
      if (pool.stage === pool.users.get(user)) { pool.stage = stage; pool.batching = stageBatching(stage); }
      const joined = pool.colocated && colocated ? joinContext(pool.colocated, user, colocated.init) : undefined;
      pool.users.set(user, stage);
      this.routes.set(user, pool);
      await pool.loaded;
      // A pipeline of its own joining running workers: its stages load in them now, and a module that cannot load
      // fails this load, as it would have failed the first workers' start.
      if (joined?.fresh) {
        try {
          await Promise.all(pool.slots.filter((sl) => sl.started).map((sl) => this.sendContext(pool, sl, joined.id)));
        } catch (e) {
          await this.detach(pool, user);
          throw e instanceof EnsembleError ? e : new StageError(stage.name, String(e));
        }
      }
    }
  }

  /**
   * Release the stages of the pipeline loaded at `pipeline` (an address): a
   * pool whose last user this was drains its batches in flight and stops its
   * workers; a pool shared with another pipeline, or with another version of
   * this one, keeps serving them.
   */
  async unload(pipeline: string): Promise<void> {
    for (const [user, pool] of [...this.routes]) {
      if (isStageOf(user, pipeline) && pool.users.has(user)) await this.detach(pool, user);
    }
    await this.inline.unload(pipeline);
    for (const k of [...this.inlineStages]) if (isStageOf(k, pipeline)) { this.inlineStages.delete(k); this.inlineUsage.delete(k); }
  }

  private async detach(pool: StagePool, user: string): Promise<void> {
    this.routes.delete(user);
    pool.users.delete(user);
    if (pool.colocated) leaveContext(pool.colocated, user);
    const next = pool.users.values().next();
    if (!next.done) {
      // Respawns start from a stage still served: the one that left may be gone from the bucket.
      if (![...pool.users.values()].includes(pool.stage)) { pool.stage = next.value; pool.batching = stageBatching(next.value); }
      return;
    }
    pool.closed = true;
    this.pools.delete(pool.key);
    if (pool.retry) { clearTimeout(pool.retry.timer); pool.retry = undefined; }
    await Promise.allSettled([...pool.active]);
    for (const w of pool.waiting.splice(0)) w.fail(new NotReadyError(`stage '${pool.stage.name}' is unloaded`));
    await Promise.all(pool.slots.splice(0).map((s) => stop(s.worker)));
  }

  /** Load a context's co-located stages in a running worker; rejects with why they cannot load there. */
  private sendContext(pool: StagePool, slot: Slot, id: number): Promise<void> {
    const init = pool.colocated?.contexts.get(id);
    if (!init) return Promise.resolve();
    (slot.contexts ??= new Set()).add(id);
    return new Promise<void>((resolve, reject) => {
      const done = () => { slot.worker.off('message', onMessage); slot.worker.off('exit', onExit); };
      const onMessage = (m: FromWorker) => {
        if ((m.type !== 'context-ready' && m.type !== 'context-error') || m.id !== id) return;
        done();
        if (m.type === 'context-ready') resolve();
        else reject(new StageError(pool.stage.name, `co-located stages: ${m.message}`));
      };
      // A worker that dies meanwhile is replaced, and its replacement starts with every context.
      const onExit = () => { done(); resolve(); };
      slot.worker.on('message', onMessage);
      slot.worker.once('exit', onExit);
      slot.worker.send({ type: 'context', context: { id, ...init } } satisfies ToWorker);
    });
  }

  /** The worker processes of a stage (for tests and diagnostics); none for an inline stage. */
  workersOf(pipeline: string, stage: string): ChildProcess[] {
    return this.routes.get(stageKey(pipeline, stage))?.slots.map((s) => s.worker) ?? [];
  }

  /** How many worker processes this transport runs, over all pools. */
  workerCount(): number {
    let n = 0;
    for (const p of this.pools.values()) n += p.slots.length;
    return n;
  }

  concurrency(stage: OnnxStage): number { return stage.scale.instances; }

  /** What the stage's batches have cost so far (a copy), or undefined for a stage not loaded here. */
  usage(pipeline: string, stage: string): StageUsage | undefined {
    const key = stageKey(pipeline, stage);
    const u = this.inlineUsage.get(key) ?? this.routes.get(key)?.usage;
    return u && { ...u };
  }

  health(pipeline: string): StageHealth[] {
    const out: StageHealth[] = [];
    for (const [user, pool] of this.routes) {
      const stage = pool.users.get(user);
      if (!stage || user !== stageKey(pipeline, stage.name)) continue;
      const h: StageHealth = { stage: stage.name, ready: !pool.broken, workers: pool.slots.filter((s) => s.started).length };
      if (pool.broken) {
        h.reason = pool.broken.message;
        if (pool.retry) h.retryInMs = Math.max(0, pool.retry.at - Date.now());
      }
      out.push(h);
    }
    return out;
  }

  invoke(pipeline: string, stage: string, items: Item[], signal?: AbortSignal, trace?: TraceCarrier): Promise<BatchResult> {
    if (this.closing) return Promise.reject(new NotReadyError(`stage '${stage}' is shutting down`));
    const key = stageKey(pipeline, stage);
    const running = this.inlineStages.has(key)
      ? this.inline.invoke(pipeline, stage, items).then((r) => { this.countInline(key, items.length, r); return r; })
      : this.run(pipeline, stage, items, signal, trace);
    this.active.add(running);
    const done = () => { this.active.delete(running); };
    running.then(done, done);
    return running;
  }

  private countInline(key: string, n: number, r: BatchResult): void {
    let u = this.inlineUsage.get(key);
    if (!u) { u = noUsage(); this.inlineUsage.set(key, u); }
    u.batches++;
    u.items += n;
    u.computeMs += r.computeMs;
    // Both bound its own CPU from above: the wall time counts waits for the event loop and the cores,
    // the process's CPU counts whatever else the gateway did meanwhile.
    u.computeCpuMs += Math.min(r.computeMs, r.cpuMs ?? r.computeMs);
  }

  /**
   * Stop the workers. By default in-flight batches finish first (each bounded
   * by its own deadline); with `drain: false` they fail at once with 503.
   * Inline stages' batches are always waited for: their sessions cannot be
   * interrupted, nor released mid-run.
   */
  async close(opts: CloseOptions = {}): Promise<void> {
    this.closing = true;
    for (const p of this.pools.values()) if (p.retry) { clearTimeout(p.retry.timer); p.retry = undefined; }
    // Batches waiting for a worker listen to the shutdown too; while draining they still get one.
    if (opts.drain === false) this.shutdown.abort();
    await Promise.allSettled([...this.active]);
    this.stopping = true;
    const all = [...this.pools.values()].flatMap((p) => p.slots);
    await Promise.all(all.map((s) => stop(s.worker)));
    this.pools.clear();
    this.routes.clear();
    await this.inline.close();
    this.inlineStages.clear();
    this.inlineUsage.clear();
  }

  private async run(pipeline: string, stage: string, items: Item[], signal?: AbortSignal, trace?: TraceCarrier): Promise<BatchResult> {
    const pool = this.routes.get(stageKey(pipeline, stage));
    if (!pool || pool.closed) throw new NotReadyError(`stage '${stage}' of '${pipeline}' is not loaded`);
    if (pool.broken) throw pool.broken;
    const running = this.runOn(pool, stageKey(pipeline, stage), stage, items, signal, trace);
    pool.active.add(running);
    const done = () => { pool.active.delete(running); };
    running.then(done, done);
    return running;
  }

  private async runOn(pool: StagePool, user: string, stage: string, items: Item[], signal?: AbortSignal, trace?: TraceCarrier): Promise<BatchResult> {
    const bound = signal ? AbortSignal.any([signal, this.shutdown.signal]) : this.shutdown.signal;
    // What the batch fails with when `bound` aborts: the caller's reason (its deadline), or the shutdown.
    const stopped = (): EnsembleError => {
      if (signal?.aborted) {
        const r = abortReason(signal);
        return r instanceof EnsembleError ? r : new TimeoutError(`stage '${stage}': ${r.message}`);
      }
      return new NotReadyError(`stage '${stage}' is shutting down`);
    };
    if (bound.aborted) throw stopped();
    // The tensors are laid out (as views, no copy) before a worker is taken: a batch that cannot be sent fails without one.
    const prepStart = performance.now();
    const { inputs, payload } = layoutInputs(pool.colocated?.view ?? pool.stage, items);
    const prepMs = performance.now() - prepStart;
    const slot = await this.acquire(pool, bound, stopped);
    try {
      await untilAborted(slot.ready, bound);
    } catch (e) {
      if (bound.aborted) {
        // A worker still starting is fine; only this batch gave up on it.
        this.release(pool, slot);
        throw stopped();
      }
      // A worker that died or failed to start fails this batch only; a fresh one takes its place.
      const err = e instanceof EnsembleError ? e : new StageError(stage, String(e));
      this.replace(pool, slot, err);
      this.reserved.delete(slot);
      throw err;
    }
    const id = this.nextId++;
    return new Promise<BatchResult>((resolve, reject) => {
      // A hung session cannot be interrupted: the worker goes, and (unless the pool is closing) a fresh one takes its place.
      const onAbort = () => {
        if (slot.current?.id !== id) return;
        const err = stopped();
        this.replace(pool, slot, restarted(err, this.closing ? 'worker stopped' : 'worker restarted'));
      };
      bound.addEventListener('abort', onAbort, { once: true });
      const settle = () => bound.removeEventListener('abort', onAbort);
      const sentAt = performance.now();
      const narrow = this.narrowed(pool.stage);
      this.running++;
      const done = () => { settle(); this.running--; };
      const cur: InFlight = { id, n: items.length, sentAt, prepMs, writeMs: 0, resolve: (r) => { done(); resolve(r); }, reject: (e) => { done(); reject(e); } };
      slot.current = cur;
      const header: RunHeader = trace ? { type: 'run', id, n: items.length, inputs, trace } : { type: 'run', id, n: items.length, inputs };
      if (narrow) header.narrow = true;
      if (pool.colocated) {
        // The user's co-located stages run with its own context: sent along the first time this worker gets one.
        const context = pool.colocated.contextOf.get(user) ?? 0;
        header.context = context;
        const init = pool.colocated.contexts.get(context);
        if (init && !slot.contexts?.has(context)) {
          header.colocated = { id: context, ...init };
          (slot.contexts ??= new Set()).add(context);
        }
      }
      // A worker that died meanwhile makes this write fail quietly: its exit fails the batch.
      writeFrame(slot.data, header, payload);
      cur.writeMs = performance.now() - sentAt;
    });
  }

  /**
   * Whether a batch about to be sent runs on one intra-op thread, chosen by load: a stage's
   * `threads` while some core has no batch of this pool's workers on it
   * (fewer batches running than cores), else one (the worker's narrow
   * session). A lone request's batches spread over idle cores (a page's two
   * text lines both do, and the longer one keeps both cores once the shorter
   * is done); under load no session splits its operators over cores that
   * other batches are using, which cost OCR about 15% more CPU per image at
   * concurrency 16.
   */
  private narrowed(stage: OnnxStage): boolean {
    return stage.scale.threads > 1 && this.running >= this.cores;
  }

  /** Batches in the workers now. */
  private running = 0;

  private acquire(pool: StagePool, signal: AbortSignal, stopped: () => Error): Promise<Slot> {
    const free = pool.slots.find((s) => !s.current && !this.reserved.has(s));
    if (free) { this.reserved.add(free); return Promise.resolve(free); }
    return new Promise((give, fail) => {
      const onAbort = () => {
        const i = pool.waiting.indexOf(waiter);
        if (i >= 0) { pool.waiting.splice(i, 1); fail(stopped()); }
      };
      const waiter: Waiter = {
        give: (s) => { signal.removeEventListener('abort', onAbort); this.reserved.add(s); give(s); },
        fail: (e) => { signal.removeEventListener('abort', onAbort); fail(e); },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      pool.waiting.push(waiter);
    });
  }

  private readonly reserved = new Set<Slot>();

  private release(pool: StagePool, slot: Slot): void {
    this.reserved.delete(slot);
    const next = pool.waiting.shift();
    if (next) next.give(slot);
  }

  private spawn(pool: StagePool, loading?: { at: number; weights?: WeightTiming }): Slot {
    // Tensors go over the data pipe, as frames; the IPC channel only starts the worker.
    const stdio: ('ignore' | 'inherit' | 'ipc' | 'pipe')[] = ['ignore', 'inherit', 'inherit', 'ipc'];
    stdio[DATA_FD] = 'pipe';
    const worker = fork(ENTRY, [`ensemble:${pool.stage.name}`], { stdio, execArgv: [], env: workerEnv(pool.colocated !== undefined) });
    const startedAt = loading?.at ?? performance.now();
    const data = worker.stdio[DATA_FD] as Socket;
    const slot: Slot = { worker, data, ready: Promise.resolve(0) };
    const reader = new FrameReader<ResultHeader>({
      onFrame: (f) => this.onFrame(pool, slot, f),
      onError: (e) => this.replace(pool, slot, new StageError(pool.stage.name, `worker crashed: ${e.message}`)),
    });
    data.on('data', (chunk: Buffer) => reader.push(chunk));
    // A worker that dies mid-write breaks the pipe: its exit (or the error below) is what fails its batch.
    data.on('error', () => undefined);
    let failStart: (e: Error) => void = () => undefined;
    slot.ready = new Promise<number>((resolve, reject) => {
      failStart = reject;
      worker.once('error', reject);
      // Without this a worker that dies while loading would leave `ready` (and every batch waiting on it) pending forever.
      worker.once('exit', (code, signal) => reject(new StageError(pool.stage.name, `worker exited before its session was ready (${signal ?? `code ${code}`})`)));
      const onInit = (m: FromWorker) => {
        if (m.type === 'ready') {
          slot.initMs = performance.now() - startedAt; slot.started = true; worker.off('message', onInit);
          slot.split = { fetchMs: slot.weights?.fetchMs ?? 0, hashMs: slot.weights?.hashMs ?? 0, sessionMs: m.sessionMs ?? m.initMs };
          this.started(pool);
          resolve(slot.initMs);
        }
        else if (m.type === 'init-error') {
          worker.off('message', onInit);
          const err = new StageError(pool.stage.name, m.message);
          reject(err);
          // Replaced now, not when a batch next finds it: a stage with no traffic must notice too, and back off.
          if (!this.closing && !pool.closed) queueMicrotask(() => this.replace(pool, slot, err));
        }
      };
      worker.on('message', onInit);
    });
    slot.ready.catch(() => undefined);
    worker.on('error', (e) => this.replace(pool, slot, new StageError(pool.stage.name, `worker crashed: ${e.message}`)));
    worker.on('exit', (code, signal) => {
      // While draining, a worker that dies must still fail its batch, or close() would wait for it forever.
      if (!this.stopping && !pool.closed && pool.slots.includes(slot)) {
        this.replace(pool, slot, new StageError(pool.stage.name, `worker exited (${signal ?? `code ${code}`})`));
      }
    });
    // Checked on every start (cheap for an unchanged file): a restarted worker must not load weights changed since.
    this.weights.resolve(pool.stage.weights.key, pool.stage.weights.sha256).then(
      (modelPath) => {
        if (!pool.slots.includes(slot) || !worker.connected) return;
        pool.modelPath = modelPath;
        const own = this.weights.timing?.(pool.stage.weights.sha256);
        const before = loading?.weights;
        slot.weights = own && { fetchMs: own.fetchMs + (before?.fetchMs ?? 0), hashMs: own.hashMs + (before?.hashMs ?? 0) };
        const init: ToWorker = { type: 'init', stage: pool.stage, modelPath };
        if (pool.colocated) {
          init.colocated = [...pool.colocated.contexts].map(([id, c]) => ({ id, ...c }));
          slot.contexts = new Set(pool.colocated.contexts.keys());
        }
        worker.send(init);
      },
      (e: unknown) => {
        const err = new StageError(pool.stage.name, `weights: ${e instanceof Error ? e.message : String(e)}`);
        failStart(err);
        if (!this.closing && !pool.closed) this.replace(pool, slot, err);
      },
    );
    return slot;
  }

  private onFrame(pool: StagePool, slot: Slot, f: Frame<ResultHeader>): void {
    const receivedAt = performance.now();
    const m = f.header;
    const cur = slot.current;
    if (!cur || cur.id !== m.id) return;
    slot.current = undefined;
    if (m.type === 'error') {
      // The worker is alive and says its run threw (a crash is its exit, below).
      const code = errorCode(m.code ?? 'stage_failed');
      cur.reject(new StageError(pool.stage.name, m.message, code, { byRun: code === 'stage_failed' }));
      this.release(pool, slot);
      return;
    }
    let outcomes: ItemOutcome[];
    try {
      if (m.items) {
        // Co-located stages: each item answered on its own, and one may have failed alone.
        if (m.items.length !== cur.n) throw new StageError(pool.stage.name, `worker answered ${m.items.length} items for a batch of ${cur.n}`);
        outcomes = m.items.map((a): ItemOutcome => {
          if (!a.ok) return { ok: false, error: a.error, code: errorCode(a.code ?? 'stage_failed') };
          // An item whose outputs do not read back fails alone, as one a co-located stage failed on.
          try {
            const row: Item = {};
            for (const [name, meta] of Object.entries(a.outputs)) row[name] = readTensor(f.payload, meta, `stage '${pool.stage.name}' output '${name}'`);
            return { ok: true, items: [row] };
          } catch (e) {
            return { ok: false, error: e instanceof Error ? e.message : String(e), code: 'bad_gateway' };
          }
        });
      } else {
        const outputs: Record<string, Tensor> = {};
        for (const [name, meta] of Object.entries(m.outputs)) outputs[name] = readTensor(f.payload, meta, `stage '${pool.stage.name}' output '${name}'`);
        pool.batching.check(outputs, cur.n);
        outcomes = pool.batching.split(outputs, cur.n).map((row) => ({ ok: true as const, items: [row] }));
      }
    } catch (e) {
      cur.reject(e instanceof StageError ? e : new StageError(pool.stage.name, e instanceof Error ? e.message : String(e)));
      this.release(pool, slot);
      return;
    }
    const decodeMs = performance.now() - receivedAt;
    const r: BatchResult = {
      outcomes,
      computeMs: m.computeMs, coldStart: false, cpuMs: m.cpuMs, peakRssBytes: m.peakRssBytes, servedMs: m.servedMs,
    };
    if (m.threads !== undefined) r.threads = m.threads;
    if (m.colocated?.length) r.colocated = m.colocated;
    // The session was made when the worker started; the first batch reports that as its cold start.
    if (slot.initMs !== undefined) {
      r.coldStart = true; r.initMs = slot.initMs; slot.initMs = undefined;
      if (slot.split) r.coldStartSplit = slot.split;
    }
    // Both processes' own work on the tensors (laying out, reading frames, stacking, splitting), and the rest
    // of the round trip: the pipe itself, and each side waiting for the other to get to the bytes.
    const serializeMs = cur.prepMs + cur.writeMs + m.readMs + m.serializeMs + f.readMs + decodeMs;
    const ipcMs = Math.max(0, receivedAt - cur.sentAt - cur.writeMs - m.readMs - m.servedMs - f.readMs);
    r.transfer = { serializeMs, ipcMs };
    const u = pool.usage;
    u.batches++;
    u.items += cur.n;
    u.computeMs += m.sessionMs ?? m.computeMs;
    u.computeCpuMs += m.computeCpuMs;
    u.serializeMs += serializeMs;
    u.ipcMs += ipcMs;
    u.colocatedCpuMs += m.colocatedCpuMs ?? 0;
    cur.resolve(r);
    this.release(pool, slot);
  }

  /** One more worker after a pause that doubles with each try; the milliseconds until it starts. */
  private scheduleRetry(pool: StagePool): number {
    if (pool.retry) return Math.max(0, pool.retry.at - Date.now());
    const delay = Math.min(RESTART_BACKOFF_MS.max, RESTART_BACKOFF_MS.first * 2 ** pool.retries);
    pool.retries++;
    const timer = setTimeout(() => {
      pool.retry = undefined;
      if (this.closing || pool.closed || pool.slots.length >= pool.stage.scale.instances) return;
      pool.slots.push(this.spawn(pool));
    }, delay);
    // A pending retry must not keep a finished process alive.
    timer.unref();
    pool.retry = { timer, at: Date.now() + delay };
    return delay;
  }

  /** A worker's session is ready: the stage serves again, with all its instances. */
  private started(pool: StagePool): void {
    pool.failedStarts = 0;
    if (this.closing || pool.closed) return;
    pool.broken = undefined;
    pool.retries = 0;
    while (pool.slots.length < pool.stage.scale.instances) pool.slots.push(this.spawn(pool));
  }

  private reportRestart(pool: StagePool, err: EnsembleError): void {
    const o = this.opts.observer;
    if (!o?.workerRestarted) return;
    // Replacing the worker matters more than counting it: an observer that throws must not stop it.
    try {
      for (const e of restartEvents(pool, err)) o.workerRestarted(e);
    } catch (e) {
      console.error('[ensemble] the worker restart observer threw:', e);
    }
  }

  /** Fail the slot's batch with `err`, kill its worker process and put a fresh one in its place. */
  private replace(pool: StagePool, slot: Slot, err: EnsembleError): void {
    const i = pool.slots.indexOf(slot);
    if (i < 0) return;
    const ending = this.closing || pool.closed === true;
    const cur = slot.current;
    slot.current = undefined;
    if (cur) cur.reject(err);
    this.reserved.delete(slot);
    slot.worker.removeAllListeners();
    slot.worker.on('error', () => undefined);
    slot.worker.kill('SIGKILL');
    // Whatever it still had on the pipe, either way, answers nothing now.
    slot.data.destroy();
    if (!slot.started) pool.failedStarts++;
    if (!ending) this.reportRestart(pool, err);
    if (ending || pool.failedStarts >= MAX_FAILED_STARTS) {
      pool.slots.splice(i, 1);
      if (ending && pool.slots.length === 0) {
        // Draining with no worker left to give them: nothing would ever answer these.
        for (const w of pool.waiting.splice(0)) w.fail(new NotReadyError(`stage '${pool.stage.name}' is shutting down`));
      }
      if (!ending) {
        // A model that cannot load would otherwise restart workers in a tight loop.
        const delay = this.scheduleRetry(pool);
        if (!pool.slots.some((s) => s.started)) {
          pool.broken = new NotReadyError(`stage '${pool.stage.name}': workers failed to start ${pool.failedStarts} times in a row (last: ${err.message}); next try in ${Math.round(delay / 1000)} s`);
          for (const w of pool.waiting.splice(0)) w.fail(pool.broken);
        }
      }
      return;
    }
    const fresh = this.spawn(pool);
    pool.slots[i] = fresh;
    const next = pool.waiting.shift();
    if (next) next.give(fresh);
  }
}


/** A user of a pool with co-located stages gets the context of its pipeline: one already there, or a new one (`fresh`). */
function joinContext(g: PoolGroup, user: string, init: ColocatedInit): { id: number; fresh: boolean } {
  const same = (c: ColocatedInit) => c.manifest.name === init.manifest.name && c.manifest.dir === init.manifest.dir;
  for (const [id, c] of g.contexts) {
    if (same(c)) { g.contextOf.set(user, id); return { id, fresh: false }; }
  }
  const id = g.nextId++;
  g.contexts.set(id, init);
  g.contextOf.set(user, id);
  return { id, fresh: true };
}

/** A user leaves its context; the context goes with its last user. */
function leaveContext(g: PoolGroup, user: string): void {
  const id = g.contextOf.get(user);
  g.contextOf.delete(user);
  if (id !== undefined && ![...g.contextOf.values()].includes(id)) g.contexts.delete(id);
}

/** Which function stages the worker pool runs in its workers (WorkerPoolTransport.view); none when `colocate` is false. */
export function poolPlacement(manifest: Manifest, colocate = true): Placement {
  return placeStages(manifest, { duplicate: false, takes: (o) => colocate && o.scale.isolation !== 'inline' });
}

/** Every stage the pool serves lost a worker. */
function restartEvents(pool: StagePool, err: EnsembleError): { pipeline: string; stage: string; reason: string }[] {
  // A user is stageKey(pipeline, stage.name): the pipeline is what precedes '/<stage>'.
  return [...pool.users].map(([user, stage]) => ({ pipeline: user.slice(0, user.length - stage.name.length - 1), stage: stage.name, reason: err.code }));
}

/** The same error, saying what became of the worker. */
function restarted(err: EnsembleError, what: string): EnsembleError {
  const message = `${err.message} (${what})`;
  if (err instanceof TimeoutError) return new TimeoutError(message);
  if (err instanceof NotReadyError) return new NotReadyError(message);
  return new EnsembleError(message, err.code);
}

function stop(worker: ChildProcess): Promise<void> {
  if (worker.exitCode !== null || worker.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    worker.once('exit', () => resolve());
    worker.kill('SIGTERM');
  });
}

/**
 * Stages that would run the same session on the same batches share a key:
 * the same weights and session settings, and everything a worker stacks a
 * batch and splits its outputs with (input and output names, padding,
 * per-request inputs, batch axes). `share: false` makes the key the stage's
 * own, per loaded version (`address`): a reload of such a stage starts new
 * workers and the old version's stop once it is done.
 */
function poolKey(address: string, stage: OnnxStage, colocated?: UserGroup): string {
  if (stage.scale.share === false) return `own:${stageKey(address, stage.name)}`;
  // Co-located stages are part of what a worker runs: the same modules, options, inputs and outputs, or none.
  const group = colocated ? [colocated.init.group, colocated.init.manifest.stages.map((f) => [f.name, f.kind === 'function' ? f.module : null, f.options, f.inputs, f.outputs])] : null;
  return JSON.stringify([group,
    stage.weights.sha256, stage.scale.threads, stage.session.graphOptimization, stage.scale.instances, stage.scale.isolation ?? 'process',
    Object.keys(stage.inputs).sort(), Object.keys(stage.outputs).sort(), stage.batch.padAxis ?? null, stage.batch.padValue,
    [...(stage.perRequest ?? [])].sort(), sortedEntries(stage.inputAxes), sortedEntries(stage.outputAxes),
  ]);
}

function sortedEntries(axes: Record<string, number> | undefined): [string, number][] {
  return Object.entries(axes ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * A batch's inputs as frame groups: every model input's tensors of all the
 * items back to back (views of their storage, written as they are), a
 * per-request input once.
 */
function layoutInputs(stage: OnnxStage, items: Item[]): { inputs: Record<string, GroupMeta>; payload: PayloadWriter } {
  const payload = new PayloadWriter();
  const inputs: Record<string, GroupMeta> = {};
  const perRequest = stage.perRequest ?? [];
  for (const name of Object.keys(stage.inputs)) {
    const parts = items.map((it) => it[name]);
    if (parts.length === 0 || parts.some((p) => p === undefined)) throw new StageError(stage.name, `input '${name}' missing from an item`);
    try {
      inputs[name] = addGroup(payload, perRequest.includes(name) ? parts.slice(0, 1) : parts, `input '${name}'`);
    } catch (e) {
      throw new StageError(stage.name, e instanceof Error ? e.message : String(e));
    }
  }
  return { inputs, payload };
}
