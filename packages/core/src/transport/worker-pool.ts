import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Manifest, OnnxStage } from '../manifest/types.js';
import type { Item } from '../tensor/types.js';
import type { BatchResult } from '../runtime/types.js';
import type { WeightStore } from '../storage/types.js';
import type { StageTransport } from './types.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';
import { EnsembleError, NotReadyError, StageError, TimeoutError, errorCode } from '../errors.js';
import { InProcessTransport } from './in-process.js';

const ENTRY = fileURLToPath(new URL('./stage-worker-entry.mjs', import.meta.url));

interface Slot {
  worker: ChildProcess;
  ready: Promise<number>;
  /** The batch it is running, if any. */
  current?: { id: number; resolve: (r: BatchResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };
  /** The first result after a (re)start is a cold start. */
  initMs?: number;
  /** Set once the worker reported its session ready. */
  started?: boolean;
}

interface StagePool {
  stage: OnnxStage;
  modelPath: string;
  slots: Slot[];
  waiting: { give: (s: Slot) => void; fail: (e: Error) => void }[];
  /** Workers in a row that died before their session was ready. */
  failedStarts: number;
  /** Set when workers keep failing to start: the stage stops respawning and answers 503. */
  broken?: EnsembleError;
}

/** Workers that fail to start this many times in a row mark the stage broken instead of respawning forever. */
const MAX_FAILED_STARTS = 3;

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
  readonly kind = 'local';
  private readonly pools = new Map<string, StagePool>();
  private readonly inline: InProcessTransport;
  private readonly inlineStages = new Set<string>();
  private nextId = 1;
  private closing = false;

  constructor(private readonly weights: WeightStore) {
    this.inline = new InProcessTransport(weights);
  }

  async load(manifest: Manifest): Promise<void> {
    const inline = manifest.stages.filter((s) => s.kind === 'onnx' && s.scale.isolation === 'inline');
    if (inline.length) {
      await this.inline.load({ ...manifest, stages: inline });
      for (const s of inline) this.inlineStages.add(key(manifest.name, s.name));
    }
    for (const stage of manifest.stages) {
      if (stage.kind !== 'onnx' || stage.scale.isolation === 'inline') continue;
      const modelPath = await this.weights.resolve(stage.weights.key, stage.weights.sha256);
      const pool: StagePool = { stage, modelPath, slots: [], waiting: [], failedStarts: 0 };
      for (let i = 0; i < stage.scale.instances; i++) pool.slots.push(this.spawn(pool));
      this.pools.set(key(manifest.name, stage.name), pool);
      await Promise.all(pool.slots.map((s) => s.ready));
    }
  }

  /** The worker processes of a stage (for tests and diagnostics); none for an inline stage. */
  workersOf(pipeline: string, stage: string): ChildProcess[] {
    return this.pools.get(key(pipeline, stage))?.slots.map((s) => s.worker) ?? [];
  }

  async invoke(pipeline: string, stage: string, items: Item[]): Promise<BatchResult> {
    if (this.inlineStages.has(key(pipeline, stage))) return this.inline.invoke(pipeline, stage, items);
    const pool = this.pools.get(key(pipeline, stage));
    if (!pool) throw new NotReadyError(`stage '${stage}' of '${pipeline}' is not loaded`);
    if (pool.broken) throw pool.broken;
    const slot = await this.acquire(pool);
    try {
      await slot.ready;
    } catch (e) {
      // A worker that died or failed to start fails this batch only; a fresh one takes its place.
      const err = e instanceof EnsembleError ? e : new StageError(stage, String(e));
      this.replace(pool, slot, err);
      this.reserved.delete(slot);
      throw err;
    }
    const id = this.nextId++;
    return new Promise<BatchResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        // A hung session cannot be interrupted; the thread goes, a fresh one takes its place.
        this.replace(pool, slot, new TimeoutError(`stage '${stage}' timed out after ${pool.stage.timeoutMs} ms (worker restarted)`));
      }, pool.stage.timeoutMs);
      slot.current = { id, resolve, reject, timer };
      slot.worker.send({ type: 'run', id, items } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.pools.values()].flatMap((p) => p.slots);
    await Promise.all(all.map((s) => stop(s.worker)));
    this.pools.clear();
    await this.inline.close();
    this.inlineStages.clear();
  }

  private acquire(pool: StagePool): Promise<Slot> {
    const free = pool.slots.find((s) => !s.current && !this.reserved.has(s));
    if (free) { this.reserved.add(free); return Promise.resolve(free); }
    return new Promise((give, fail) => pool.waiting.push({ give: (s) => { this.reserved.add(s); give(s); }, fail }));
  }

  private readonly reserved = new Set<Slot>();

  private release(pool: StagePool, slot: Slot): void {
    this.reserved.delete(slot);
    const next = pool.waiting.shift();
    if (next) next.give(slot);
  }

  private spawn(pool: StagePool): Slot {
    // 'advanced' serialization carries typed arrays across the channel as such.
    const worker = fork(ENTRY, [`ensemble:${pool.stage.name}`], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    const slot: Slot = { worker, ready: Promise.resolve(0) };
    slot.ready = new Promise<number>((resolve, reject) => {
      worker.once('error', reject);
      // Without this a worker that dies while loading would leave `ready` (and every batch waiting on it) pending forever.
      worker.once('exit', (code, signal) => reject(new StageError(pool.stage.name, `worker exited before its session was ready (${signal ?? `code ${code}`})`)));
      const onInit = (m: FromWorker) => {
        if (m.type === 'ready') { slot.initMs = m.initMs; slot.started = true; pool.failedStarts = 0; worker.off('message', onInit); resolve(m.initMs); }
        else if (m.type === 'init-error') { worker.off('message', onInit); reject(new StageError(pool.stage.name, m.message)); }
      };
      worker.on('message', onInit);
    });
    slot.ready.catch(() => undefined);
    worker.on('message', (m: FromWorker) => this.onMessage(pool, slot, m));
    worker.on('error', (e) => this.replace(pool, slot, new StageError(pool.stage.name, `worker crashed: ${e.message}`)));
    worker.on('exit', (code, signal) => {
      if (!this.closing && pool.slots.includes(slot)) {
        this.replace(pool, slot, new StageError(pool.stage.name, `worker exited (${signal ?? `code ${code}`})`));
      }
    });
    worker.send({ type: 'init', stage: pool.stage, modelPath: pool.modelPath } satisfies ToWorker);
    return slot;
  }

  private onMessage(pool: StagePool, slot: Slot, m: FromWorker): void {
    if (m.type !== 'result' && m.type !== 'error') return;
    const cur = slot.current;
    if (!cur || cur.id !== m.id) return;
    clearTimeout(cur.timer);
    slot.current = undefined;
    if (m.type === 'result') {
      const r = m.result;
      // The session was made when the worker started; the first batch reports that as its cold start.
      if (slot.initMs !== undefined) { r.coldStart = true; r.initMs = slot.initMs; slot.initMs = undefined; }
      else r.coldStart = false;
      cur.resolve(r);
    } else {
      cur.reject(new StageError(pool.stage.name, m.message, errorCode(m.code ?? 'stage_failed')));
    }
    this.release(pool, slot);
  }

  /** Fail the slot's batch with `err`, kill its thread and put a fresh one in its place. */
  private replace(pool: StagePool, slot: Slot, err: EnsembleError): void {
    const i = pool.slots.indexOf(slot);
    if (i < 0) return;
    const cur = slot.current;
    slot.current = undefined;
    if (cur) { clearTimeout(cur.timer); cur.reject(err); }
    this.reserved.delete(slot);
    slot.worker.removeAllListeners();
    slot.worker.on('error', () => undefined);
    slot.worker.kill('SIGKILL');
    if (!slot.started) pool.failedStarts++;
    if (this.closing || pool.failedStarts >= MAX_FAILED_STARTS) {
      pool.slots.splice(i, 1);
      if (!this.closing) {
        // A model that cannot load would otherwise restart workers in a tight loop.
        pool.broken = new NotReadyError(`stage '${pool.stage.name}': workers failed to start ${pool.failedStarts} times in a row (last: ${err.message}); not restarting`);
        for (const w of pool.waiting.splice(0)) w.fail(pool.broken);
      }
      return;
    }
    const fresh = this.spawn(pool);
    pool.slots[i] = fresh;
    const next = pool.waiting.shift();
    if (next) next.give(fresh);
  }
}

function key(pipeline: string, stage: string): string { return `${pipeline}/${stage}`; }

function stop(worker: ChildProcess): Promise<void> {
  if (worker.exitCode !== null || worker.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    worker.once('exit', () => resolve());
    worker.kill('SIGTERM');
  });
}
