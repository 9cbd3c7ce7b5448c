import type { Span, SpanContext } from '@opentelemetry/api';
import type { Manifest, StageSpec } from '../manifest/types.js';
import type { Item, Tensor } from '../tensor/types.js';
import type { StageRuntime } from '../runtime/types.js';
import type { StageTransport } from '../transport/types.js';
import type { StageRunRecord } from '../storage/types.js';
import { Batcher, type ItemRun } from '../batching/batcher.js';
import { createFunctionRuntime, functionStageConcurrency } from '../runtime/function.js';
import type { SyncActivity } from './activity.js';
import { splitAlong, splitRows } from '../tensor/rows.js';
import { conditionTensors } from '../manifest/dag.js';
import { BadRequestError, EnsembleError, PayloadTooLargeError, StageError, TimeoutError, errorCode, toEnsembleError } from '../errors.js';
import { tooManyItems } from '../tensor/codec.js';
import { MAX_TIMER_MS, RunCancel } from '../deadline.js';
import { LineageNode } from './lineage.js';
import { Lane } from './lane.js';
import { CHUNK_ITEMS, nextTurn } from './chunks.js';
import { joinOutputs } from './join.js';
import { stagesFor } from './plan.js';
import { stageLineage } from '../manifest/dag.js';
import { StageStats } from './stage-stats.js';
import { itemBytes } from '../tensor/bytes.js';
import type { Observer } from '../observability/events.js';
import { endItemSpan, failSpan, startItemSpan, traceBatch, type RequestTrace } from '../observability/spans.js';

export interface RunOptions {
  /** Aborted when the client goes away: pending work is dropped. */
  signal?: AbortSignal;
  /**
   * The same as `signal` for a host that can tell without one: called once,
   * at the start, with the function to call when the client goes away (an
   * AbortController made for every request only to learn that is a cost per
   * request).
   */
  cancelWith?: (cancel: () => void) => void;
  /** Whole-request deadline. */
  timeoutMs?: number;
  /**
   * The pipeline outputs the caller asked for (all when absent): stages whose
   * results reach none of them do not run.
   */
  outputs?: readonly string[];
  /**
   * Triton's schedule policy priority for every item of this run: lower
   * value, higher priority; 0 (the default) is a synchronous request's. Batch
   * jobs run at a lower priority, so on a shared stage their items only fill
   * what synchronous requests leave.
   */
  priority?: number;
  /** The request's trace: each item's stage span is its child (nothing is built while tracing is off). */
  trace?: RequestTrace;
  /**
   * performance.now() at the request's start (the gateway's, decoding
   * included): stage times in the run record are offsets from it. Default:
   * when run() is called.
   */
  startedAt?: number;
}

export interface RunResult {
  outputs: Record<string, Tensor>;
  stages: StageRunRecord[];
}

/** Thrown by run(): the error the request failed with, plus the per-stage record gathered so far. */
export class RunFailure extends Error {
  constructor(readonly error: EnsembleError, readonly stages: StageRunRecord[]) {
    super(error.message, { cause: error });
  }
}

/**
 * Walks one pipeline's DAG for each request. A stage starts for an item as
 * soon as the tensors it reads exist for that item (or its ancestors), so
 * independent branches run at the same time and fan-out items flow on one by
 * one; every stage call goes through that stage's batcher.
 */
export class Executor {
  private readonly batchers = new Map<string, Batcher>();
  private readonly consumers = new Map<string, StageSpec[]>();
  private readonly lineages = new Map<string, readonly string[]>();
  /** How many of one request's items a stage holds at once (queued or running); the rest wait in the request. */
  private readonly laneLimits = new Map<string, number>();
  private readonly plans = new Map<string, Set<string>>();
  /** Counts this executor's synchronous runs (priority 0), for work that yields to them. */
  private activity: SyncActivity | undefined;

  private constructor(readonly manifest: Manifest, private readonly transport: StageTransport) {
    for (const s of manifest.stages) {
      for (const t of [...Object.values(s.inputs), ...conditionTensors(s).map((c) => c.tensor)]) {
        const list = this.consumers.get(t) ?? [];
        if (!list.includes(s)) list.push(s);
        this.consumers.set(t, list);
      }
      this.lineages.set(s.name, stageLineage(manifest, s));
    }
  }

  /**
   * Load the stages (sessions through the transport, function modules here)
   * and build the batchers. `address` is what the transport knows this
   * loaded pipeline by (its name unless given; see StageTransport.load);
   * `observer` is told of every answered batch; `activity` counts the
   * synchronous runs (shared by a server's pipelines).
   */
  static async create(
    manifest: Manifest, transport: StageTransport, opts: { address?: string; observer?: Observer; activity?: SyncActivity } = {},
  ): Promise<Executor> {
    const { address = manifest.name, observer } = opts;
    const view = transport.view?.(manifest) ?? manifest;
    const ex = new Executor(view, transport);
    ex.activity = opts.activity;
    await transport.load(manifest, address);
    for (const s of view.stages) {
      let run: (items: Item[], signal: AbortSignal, traces: readonly (SpanContext | undefined)[]) => ReturnType<StageRuntime['run']>;
      let concurrency: number;
      if (s.kind === 'function') {
        const rt = await createFunctionRuntime(s, view.name, view.dir);
        run = (items, signal, traces) => traceBatch(s.name, 'function', traces, () => rt.run(items, signal));
        concurrency = functionStageConcurrency(s);
      } else {
        run = (items, signal, traces) => traceBatch(s.name, transport.kind, traces,
          (carrier) => transport.invoke(address, s.name, items, signal, carrier));
        concurrency = transport.concurrency(s);
      }
      // Enough to keep every instance busy with full batches, never more than the queue holds: a request
      // larger than that feeds the stage as room frees instead of overflowing the queue by itself.
      ex.laneLimits.set(s.name, Math.max(1, Math.min(s.batch.maxQueue, s.batch.maxSize * concurrency * 2)));
      ex.batchers.set(s.name, new Batcher({
        stage: s.name,
        maxSize: s.batch.maxSize,
        maxDelayMs: s.batch.maxDelayMs,
        maxQueue: s.batch.maxQueue,
        queueFromServiceRate: s.batch.queueFromServiceRate,
        queueTimeoutMs: s.batch.queueTimeoutMs,
        padAxis: s.batch.padAxis,
        perRequest: s.perRequest,
        // A function stage's module gets one item at a time: its batches need not share a shape.
        anyShapes: s.kind === 'function' || s.anyShapes === true,
        concurrency,
        timeoutMs: s.timeoutMs,
        run,
        onBatch: observer?.batch && ((b) => observer.batch!({ ...b, pipeline: manifest.name, version: manifest.version })),
      }));
    }
    return ex;
  }

  /** Queue depth per stage, for readiness and metrics. */
  queueDepths(): Record<string, number> {
    return Object.fromEntries([...this.batchers].map(([k, b]) => [k, b.queued]));
  }

  /** Per stage, the items queued and the batches being run right now. */
  stageLoad(): Record<string, { queued: number; inFlight: number }> {
    return Object.fromEntries([...this.batchers].map(([k, b]) => [k, { queued: b.queued, inFlight: b.busy }]));
  }

  async close(): Promise<void> {
    await Promise.all([...this.batchers.values()].map((b) => b.close()));
  }

  run(inputs: Record<string, Tensor>, opts: RunOptions = {}): Promise<RunResult> {
    const run = new RequestRun(this, inputs, opts).start();
    const activity = this.activity;
    if (!activity || (opts.priority ?? 0) !== 0) return run;
    activity.begin();
    return run.finally(() => activity.end());
  }

  /** @internal used by RequestRun */
  batcher(stage: string): Batcher { return this.batchers.get(stage)!; }
  /** @internal */
  consumersOf(tensor: string): StageSpec[] { return this.consumers.get(tensor) ?? []; }
  /** @internal */
  lineageOf(stage: string): readonly string[] { return this.lineages.get(stage)!; }
  /** @internal */
  laneLimit(stage: string): number { return this.laneLimits.get(stage)!; }
  /** @internal the stages a request for `outputs` needs; undefined: all of them. */
  plan(outputs: readonly string[] | undefined): Set<string> | undefined {
    if (!outputs) return undefined;
    const key = [...outputs].sort().join('\n');
    let p = this.plans.get(key);
    if (!p) {
      p = stagesFor(this.manifest, outputs);
      if (p.size === this.manifest.stages.length) p = undefined;
      else if (this.plans.size < 64) this.plans.set(key, p);
    }
    return p;
  }
}

/** The state of one request walking the DAG. */
class RequestRun {
  private readonly roots: LineageNode[] = [];
  /** Per stage, the nodes it has started (or skipped) on: identity sets, no key strings per item. */
  private readonly started = new Map<string, Set<LineageNode>>();
  /** Per stage this request reached (made on first use: a request need not reach every stage). */
  private readonly stats = new Map<string, StageStats>();
  private readonly lanes = new Map<string, Lane>();
  /** Drops this request's items still queued in stage batchers when it fails. */
  private readonly abort = new RunCancel();
  /** Stages this request needs (undefined: all). */
  private readonly needed: Set<string> | undefined;
  private readonly outputs: readonly string[];
  private inFlight = 0;
  /** Rows still being cut into items (a big request), or outputs being joined: not finished yet. */
  private seeding = false;
  private joining = false;
  /** Items each fan-out stage has produced for this request, against max_items. */
  private readonly fannedOut = new Map<string, number>();
  /** Bytes this request's stage outputs came to so far, against the pipeline's max_run_bytes. */
  private producedBytes = 0;
  private settled = false;
  private resolve!: (r: RunResult) => void;
  private reject!: (e: RunFailure) => void;
  private timer: NodeJS.Timeout | undefined;

  /** performance.now() at the request's start: stage times are offsets from it. */
  private readonly origin: number;

  constructor(private readonly ex: Executor, private readonly inputs: Record<string, Tensor>, private readonly opts: RunOptions) {
    this.origin = opts.startedAt ?? performance.now();
    this.outputs = opts.outputs ?? ex.manifest.outputs.map((o) => o.name);
    this.needed = ex.plan(opts.outputs);
  }

  private statsOf(stage: string): StageStats {
    let s = this.stats.get(stage);
    if (!s) { s = new StageStats(stage, this.origin); this.stats.set(stage, s); }
    return s;
  }

  private laneOf(stage: string): Lane {
    let l = this.lanes.get(stage);
    if (!l) { l = new Lane(); this.lanes.set(stage, l); }
    return l;
  }

  private startedOn(stage: string): Set<LineageNode> {
    let set = this.started.get(stage);
    if (!set) { set = new Set(); this.started.set(stage, set); }
    return set;
  }

  start(): Promise<RunResult> {
    const promise = new Promise<RunResult>((res, rej) => { this.resolve = res; this.reject = rej; });
    const { signal, timeoutMs, cancelWith } = this.opts;
    const gone = () => this.fail(new EnsembleError('client went away', 'cancelled'));
    if (signal) {
      if (signal.aborted) gone();
      else signal.addEventListener('abort', gone, { once: true });
    }
    cancelWith?.(gone);
    if (timeoutMs !== undefined && !this.settled) {
      this.timer = setTimeout(() => {
        const waiting = this.ex.manifest.stages.filter((s) => (this.stats.get(s.name)?.unfinished ?? 0) > 0).map((s) => `'${s.name}'`);
        this.fail(new TimeoutError(`request timed out after ${timeoutMs} ms${waiting.length ? ` waiting on stage ${waiting.join(', ')}` : ''}`));
      }, Math.min(timeoutMs, MAX_TIMER_MS));
    }
    try {
      const rest = this.seed();
      rest?.then(() => this.maybeFinish(), (e: unknown) => this.fail(toEnsembleError(e)));
    } catch (e) {
      this.fail(toEnsembleError(e));
    }
    this.maybeFinish();
    return promise;
  }

  /**
   * Cut the request's inputs into rows (items) and put them on root nodes, a
   * piece at a time: the first piece now, the rest (a big request only) one
   * per turn of the event loop, resolved when all are seeded.
   */
  private seed(): Promise<void> | undefined {
    const m = this.ex.manifest;
    let rows = -1;
    for (const spec of m.inputs) {
      const t = this.inputs[spec.name];
      if (!t) throw new BadRequestError(`missing input '${spec.name}'`);
      if (spec.perRequest) continue;
      const axis = spec.batchAxis ?? 0;
      if (t.shape.length <= axis) {
        throw new BadRequestError(`input '${spec.name}' has shape [${t.shape}]: dim ${axis} must be the items`);
      }
      const n = t.shape[axis];
      if (n > m.maxItems) throw tooManyItems(spec.name, n, m.maxItems);
      rows = rows < 0 ? n : Math.min(rows, n);
    }
    rows = Math.max(rows, 0);
    this.seedRows(0, Math.min(rows, CHUNK_ITEMS));
    if (rows <= CHUNK_ITEMS) return undefined;
    this.seeding = true;
    return (async () => {
      for (let begin = CHUNK_ITEMS; begin < rows && !this.settled; begin += CHUNK_ITEMS) {
        await nextTurn();
        if (!this.settled) this.seedRows(begin, Math.min(rows, begin + CHUNK_ITEMS));
      }
    })().finally(() => { this.seeding = false; });
  }

  private seedRows(begin: number, end: number): void {
    const m = this.ex.manifest;
    const split: Record<string, Tensor[] | Tensor> = {};
    for (const spec of m.inputs) {
      const t = this.inputs[spec.name];
      // A per-request input is one tensor every item sees; the stage gets it whole.
      split[spec.name] = spec.perRequest ? t
        : spec.batchAxis ? splitAlong(t, spec.batchAxis, begin, end) : splitRows(t, begin, end);
    }
    const names = m.inputs.map((s) => s.name);
    const first = this.roots.length;
    for (let i = begin; i < end; i++) {
      const node = new LineageNode(i);
      for (const spec of m.inputs) {
        const parts = split[spec.name];
        node.tensors.set(spec.name, Array.isArray(parts) ? parts[i - begin] : parts);
      }
      this.roots.push(node);
    }
    for (let i = first; i < this.roots.length; i++) this.produced(this.roots[i], names);
  }

  /** Tensors appeared on `node`: start every stage that can now run on it or beneath it. */
  private produced(node: LineageNode, tensors: string[]): void {
    const stages = new Set<StageSpec>();
    for (const t of tensors) for (const s of this.ex.consumersOf(t)) stages.add(s);
    for (const s of stages) {
      if (this.needed && !this.needed.has(s.name)) continue;
      for (const target of node.at(this.ex.lineageOf(s.name))) this.tryStart(s, target);
    }
  }

  private tryStart(stage: StageSpec, node: LineageNode): void {
    if (this.settled) return;
    const startedOn = this.startedOn(stage.name);
    if (startedOn.has(node)) return;
    const item: Item = {};
    for (const [local, tensor] of Object.entries(stage.inputs)) {
      const t = node.lookup(tensor);
      if (!t) return;
      item[local] = t;
    }
    if (stage.when) {
      const cond = node.lookup(stage.when.tensor);
      if (!cond) return;
      if (!holds(stage, cond)) {
        this.skip(stage, node, startedOn);
        return;
      }
    }
    startedOn.add(node);
    const lane = this.laneOf(stage.name);
    if (lane.active >= this.ex.laneLimit(stage.name)) lane.push({ node, item });
    else this.submit(stage, node, item);
  }

  /** The condition is false for this item: its outputs are the tensors `otherwise` names, once they exist. */
  private skip(stage: StageSpec, node: LineageNode, startedOn: Set<LineageNode>): void {
    const outs: [string, Tensor][] = [];
    for (const [local, tensor] of Object.entries(stage.when!.otherwise)) {
      const t = node.lookup(tensor);
      if (!t) return;
      outs.push([stage.outputs[local], t]);
    }
    startedOn.add(node);
    for (const [name, t] of outs) node.tensors.set(name, t);
    this.statsOf(stage.name).skipped();
    this.produced(node, outs.map(([name]) => name));
  }

  private submit(stage: StageSpec, node: LineageNode, item: Item): void {
    const lane = this.laneOf(stage.name);
    const stats = this.statsOf(stage.name);
    const batcher = this.ex.batcher(stage.name);
    // The stage's queue is full while this request still has items there: this request's own work
    // holds it, so the item waits for one of them to finish (Triton's ensemble scheduler blocks a step
    // on its in-flight limit the same way). With none there, the queue is full of other requests' work
    // and the submit below answers 429.
    if (batcher.full && lane.active > 0) {
      lane.putBack({ node, item });
      return;
    }
    lane.active++;
    this.inFlight++;
    stats.submitted(itemBytes(item));
    const span = startItemSpan(this.opts.trace, stage.name);
    // One reaction per item and stage, not a then/catch/finally chain of three promises; the rest
    // is methods, not closures made per item.
    batcher.submit(item, this.abort, this.opts.priority ?? 0, span?.spanContext()).then(
      (run) => this.answered(stage, node, span, run),
      (e: unknown) => {
        this.itemFailed(stage, span, e);
        this.itemDone(stage);
      },
    );
  }

  private answered(stage: StageSpec, node: LineageNode, span: Span | undefined, run: ItemRun): void {
    try {
      if (span) endItemSpan(span, run, run.outcome.ok ? undefined : { message: run.outcome.error, code: run.outcome.code });
      this.completed(stage, node, run);
    } catch (e) {
      this.itemFailed(stage, span, e);
    }
    this.itemDone(stage);
  }

  private itemFailed(stage: StageSpec, span: Span | undefined, e: unknown): void {
    const err = toEnsembleError(e);
    if (span?.isRecording()) failSpan(span, err);
    this.statsOf(stage.name).failed(err.message);
    // Name the stage once: transports' errors often do already.
    const named = err instanceof StageError || err.message.includes(`stage '${stage.name}'`);
    this.fail(named || err.code === 'overloaded' || err.code === 'timeout' || err.code === 'cancelled'
      ? err : new StageError(stage.name, err.message, err.code, { cause: err }));
  }

  private itemDone(stage: StageSpec): void {
    this.laneOf(stage.name).active--;
    this.inFlight--;
    this.feed(stage);
    this.maybeFinish();
  }

  /** Hand the stage this request's waiting items, as far as its lane has room. */
  private feed(stage: StageSpec): void {
    const lane = this.laneOf(stage.name);
    const limit = this.ex.laneLimit(stage.name);
    while (!this.settled && lane.waiting > 0 && lane.active < limit) {
      const { node, item } = lane.take()!;
      this.submit(stage, node, item);
    }
  }

  private completed(stage: StageSpec, node: LineageNode, run: ItemRun): void {
    const stats = this.statsOf(stage.name);
    stats.record(run);
    if (this.settled) return;
    const { outcome } = run;
    if (outcome.ok) {
      let bytes = 0;
      for (const it of outcome.items) bytes += itemBytes(it);
      stats.answered(bytes);
      this.producedBytes += bytes;
      const { maxRunBytes } = this.ex.manifest;
      if (this.producedBytes > maxRunBytes) {
        this.fail(new PayloadTooLargeError(`stage '${stage.name}' brought this request's stage outputs to ${this.producedBytes} bytes, `
          + `over the pipeline's max_run_bytes ${maxRunBytes}: send fewer or smaller items per request (or raise max_run_bytes)`));
        return;
      }
    }
    if (!outcome.ok) {
      stats.failed(outcome.error);
      this.fail(new StageError(stage.name, outcome.error, errorCode(outcome.code ?? 'stage_failed')));
      return;
    }
    try {
      if (stage.kind === 'function' && stage.fanout) {
        const fanned = (this.fannedOut.get(stage.name) ?? 0) + outcome.items.length;
        this.fannedOut.set(stage.name, fanned);
        const { maxItems } = this.ex.manifest;
        if (fanned > maxItems) {
          this.fail(new PayloadTooLargeError(`stage '${stage.name}' produced ${fanned} items for this request, over the pipeline's max_items ${maxItems}`));
          return;
        }
        const children = node.addChildren(stage.name, outcome.items.length);
        children.forEach((child, j) => renameOutputs(stage, outcome.items[j], child));
        for (const child of children) this.produced(child, Object.values(stage.outputs));
      } else {
        this.produced(node, renameOutputs(stage, outcome.items[0], node));
      }
    } catch (e) {
      this.fail(toEnsembleError(e));
    }
  }

  private maybeFinish(): void {
    if (this.settled || this.inFlight > 0 || this.seeding || this.joining) return;
    let joined: ReturnType<typeof joinOutputs>;
    try {
      joined = joinOutputs(this.ex.manifest, this.roots, this.outputs);
    } catch (e) {
      this.fail(toEnsembleError(e));
      return;
    }
    if (!(joined instanceof Promise)) {
      this.finish(joined);
      return;
    }
    this.joining = true;
    joined.then((outputs) => { if (!this.settled) this.finish(outputs); }, (e: unknown) => this.fail(toEnsembleError(e)));
  }

  private records(): StageRunRecord[] {
    // Stages the request never reached (a failure upstream) would only be noise in the record; in the manifest's order.
    const out: StageRunRecord[] = [];
    for (const stage of this.ex.manifest.stages) {
      const r = this.stats.get(stage.name)?.toRecord();
      if (r && (r.items > 0 || r.skipped !== undefined || r.error !== undefined)) out.push(r);
    }
    return out;
  }

  private finish(outputs: Record<string, Tensor>): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve({ outputs, stages: this.records() });
  }

  private fail(err: EnsembleError): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    // Drops this request's items still waiting in any stage queue.
    this.abort.abort(err);
    for (const lane of this.lanes.values()) lane.clear();
    // The record must say where the request was when it ended (a timeout names the stuck stage).
    for (const s of this.stats.values()) if (s.unfinished > 0) s.failed(`unfinished: ${err.message}`);
    this.reject(new RunFailure(err, this.records()));
  }
}

/** A stage's outputs of one item put on `target` under their pipeline names; the names. */
function renameOutputs(stage: StageSpec, out: Item, target: LineageNode): string[] {
  const names: string[] = [];
  for (const local in stage.outputs) {
    const tensor = stage.outputs[local];
    const t = out[local];
    if (!t) throw new StageError(stage.name, `did not produce output '${local}'`);
    target.tensors.set(tensor, t);
    names.push(tensor);
  }
  return names;
}

/** A stage's condition for one item: one value, non-zero (or true) runs the stage. */
function holds(stage: StageSpec, cond: Tensor): boolean {
  if (cond.data.length !== 1) {
    throw new StageError(stage.name, `condition '${stage.when!.tensor}' must hold one value per item, got shape [${cond.shape.join(', ')}]`);
  }
  const v = cond.data[0];
  return typeof v === 'bigint' ? v !== 0n : v instanceof Uint8Array ? v.length > 0 : v !== 0;
}
