import { setMaxListeners } from 'node:events';
import type { Manifest, StageSpec } from '../manifest/types.js';
import type { Item, Tensor } from '../tensor/types.js';
import type { StageRuntime } from '../runtime/types.js';
import type { StageTransport } from '../transport/types.js';
import type { StageRunRecord } from '../storage/types.js';
import { Batcher, type ItemRun } from '../batching/batcher.js';
import { createFunctionRuntime } from '../runtime/function.js';
import { lambdaStageConcurrency } from '../transport/lambda-concurrency.js';
import { emptyRows, splitRows, stackRows } from '../tensor/rows.js';
import { BadRequestError, EnsembleError, StageError, TimeoutError, errorCode, toEnsembleError } from '../errors.js';
import { LineageNode } from './lineage.js';
import { StageStats } from './stage-stats.js';

export interface RunOptions {
  /** Aborted when the client goes away: pending work is dropped. */
  signal?: AbortSignal;
  /** Whole-request deadline. */
  timeoutMs?: number;
}

export interface RunResult {
  outputs: Record<string, Tensor>;
  stages: StageRunRecord[];
}

/** Thrown by run(): the cause plus the per-stage record gathered so far. */
export class RunFailure extends Error {
  constructor(override readonly cause: EnsembleError, readonly stages: StageRunRecord[]) {
    super(cause.message);
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
  private readonly stageLevel = new Map<string, number>();

  private constructor(readonly manifest: Manifest, private readonly transport: StageTransport) {
    for (const s of manifest.stages) {
      for (const t of Object.values(s.inputs)) {
        const list = this.consumers.get(t) ?? [];
        list.push(s);
        this.consumers.set(t, list);
      }
      this.stageLevel.set(s.name, Math.max(0, ...Object.values(s.inputs).map((t) => manifest.levels[t] ?? 0)));
    }
  }

  /** Load the stages (sessions through the transport, function modules here) and build the batchers. */
  static async create(manifest: Manifest, transport: StageTransport): Promise<Executor> {
    const ex = new Executor(manifest, transport);
    await transport.load(manifest);
    for (const s of manifest.stages) {
      let run: (items: Item[]) => ReturnType<StageRuntime['run']>;
      let concurrency: number;
      if (s.kind === 'function') {
        const rt = await createFunctionRuntime(s, manifest.name, manifest.dir);
        run = (items) => rt.run(items);
        // Function stages are async JS in this process; let many batches overlap.
        concurrency = Math.max(s.scale.instances, 64);
      } else {
        run = (items) => transport.invoke(manifest.name, s.name, items);
        // On Lambda a stage scales out by itself: up to its reserved concurrency, else a fixed fan-out.
        concurrency = transport.kind === 'lambda' ? lambdaStageConcurrency(s) : s.scale.instances;
      }
      ex.batchers.set(s.name, new Batcher({
        stage: s.name,
        maxSize: s.batch.maxSize,
        maxDelayMs: s.batch.maxDelayMs,
        maxQueue: s.batch.maxQueue,
        queueTimeoutMs: s.batch.queueTimeoutMs,
        padAxis: s.batch.padAxis,
        concurrency,
        timeoutMs: s.timeoutMs,
        run,
      }));
    }
    return ex;
  }

  /** Queue depth per stage, for readiness and metrics. */
  queueDepths(): Record<string, number> {
    return Object.fromEntries([...this.batchers].map(([k, b]) => [k, b.queued]));
  }

  async close(): Promise<void> {
    await Promise.all([...this.batchers.values()].map((b) => b.close()));
  }

  run(inputs: Record<string, Tensor>, opts: RunOptions = {}): Promise<RunResult> {
    return new RequestRun(this, inputs, opts).start();
  }

  /** @internal used by RequestRun */
  batcher(stage: string): Batcher { return this.batchers.get(stage)!; }
  /** @internal */
  consumersOf(tensor: string): StageSpec[] { return this.consumers.get(tensor) ?? []; }
  /** @internal */
  levelOf(stage: string): number { return this.stageLevel.get(stage)!; }
}

/** The state of one request walking the DAG. */
class RequestRun {
  private readonly roots: LineageNode[] = [];
  private readonly started = new Set<string>();
  private readonly stats = new Map<string, StageStats>();
  private readonly abort = new AbortController();
  private inFlight = 0;
  private settled = false;
  private resolve!: (r: RunResult) => void;
  private reject!: (e: RunFailure) => void;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ex: Executor, private readonly inputs: Record<string, Tensor>, private readonly opts: RunOptions) {
    for (const s of ex.manifest.stages) this.stats.set(s.name, new StageStats(s.name));
    // Every queued item listens on this signal; a fan-out request has many (40 text lines).
    setMaxListeners(0, this.abort.signal);
  }

  start(): Promise<RunResult> {
    const promise = new Promise<RunResult>((res, rej) => { this.resolve = res; this.reject = rej; });
    const { signal, timeoutMs } = this.opts;
    if (signal) {
      if (signal.aborted) this.fail(new EnsembleError('client went away', 'cancelled'));
      else signal.addEventListener('abort', () => this.fail(new EnsembleError('client went away', 'cancelled')), { once: true });
    }
    if (timeoutMs !== undefined && !this.settled) {
      this.timer = setTimeout(() => {
        const waiting = [...this.stats.values()].filter((s) => s.unfinished > 0).map((s) => `'${s.stage}'`);
        this.fail(new TimeoutError(`request timed out after ${timeoutMs} ms${waiting.length ? ` waiting on stage ${waiting.join(', ')}` : ''}`));
      }, timeoutMs);
    }
    try {
      this.seed();
    } catch (e) {
      this.fail(toEnsembleError(e));
    }
    this.maybeFinish();
    return promise;
  }

  /** Cut the request's inputs into rows (items) and put them on root nodes. */
  private seed(): void {
    const m = this.ex.manifest;
    let rows = -1;
    const split: Record<string, Tensor[]> = {};
    for (const spec of m.inputs) {
      const t = this.inputs[spec.name];
      if (!t) throw new BadRequestError(`missing input '${spec.name}'`);
      split[spec.name] = splitRows(t);
      rows = rows < 0 ? split[spec.name].length : Math.min(rows, split[spec.name].length);
    }
    for (let i = 0; i < Math.max(rows, 0); i++) {
      const node = new LineageNode([i]);
      for (const spec of m.inputs) node.tensors.set(spec.name, split[spec.name][i]);
      this.roots.push(node);
    }
    for (const node of this.roots) this.produced(node, m.inputs.map((s) => s.name));
  }

  /** Tensors appeared on `node`: start every stage that can now run beneath it. */
  private produced(node: LineageNode, tensors: string[]): void {
    const stages = new Set<StageSpec>();
    for (const t of tensors) for (const s of this.ex.consumersOf(t)) stages.add(s);
    for (const s of stages) {
      for (const target of node.atLevel(this.ex.levelOf(s.name))) this.tryStart(s, target);
    }
  }

  private tryStart(stage: StageSpec, node: LineageNode): void {
    if (this.settled) return;
    const id = `${stage.name}@${node.key}`;
    if (this.started.has(id)) return;
    const item: Item = {};
    for (const [local, tensor] of Object.entries(stage.inputs)) {
      const t = node.lookup(tensor);
      if (!t) return;
      item[local] = t;
    }
    this.started.add(id);
    this.inFlight++;
    this.stats.get(stage.name)!.submitted();
    this.ex.batcher(stage.name).submit(item, this.abort.signal)
      .then((run) => this.completed(stage, node, run))
      .catch((e: unknown) => {
        const err = toEnsembleError(e);
        this.stats.get(stage.name)!.failed(err.message);
        // Name the stage once: transports' errors often do already.
        const named = err instanceof StageError || err.message.includes(`stage '${stage.name}'`);
        this.fail(named || err.code === 'overloaded' || err.code === 'timeout' || err.code === 'cancelled'
          ? err : new StageError(stage.name, err.message, err.code));
      })
      .finally(() => {
        this.inFlight--;
        this.maybeFinish();
      });
  }

  private completed(stage: StageSpec, node: LineageNode, run: ItemRun): void {
    this.stats.get(stage.name)!.record(run);
    if (this.settled) return;
    const { outcome } = run;
    if (!outcome.ok) {
      this.stats.get(stage.name)!.failed(outcome.error);
      this.fail(new StageError(stage.name, outcome.error, errorCode(outcome.code ?? 'stage_failed')));
      return;
    }
    const rename = (out: Item, target: LineageNode) => {
      const names: string[] = [];
      for (const [local, tensor] of Object.entries(stage.outputs)) {
        const t = out[local];
        if (!t) throw new StageError(stage.name, `did not produce output '${local}'`);
        target.tensors.set(tensor, t);
        names.push(tensor);
      }
      return names;
    };
    try {
      if (stage.kind === 'function' && stage.fanout) {
        outcome.items.forEach((out, j) => {
          const child = new LineageNode([...node.path, j], node);
          node.children.push(child);
          rename(out, child);
        });
        for (const child of node.children) this.produced(child, Object.values(stage.outputs));
      } else {
        this.produced(node, rename(outcome.items[0], node));
      }
    } catch (e) {
      this.fail(toEnsembleError(e));
    }
  }

  private maybeFinish(): void {
    if (this.settled || this.inFlight > 0) return;
    try {
      this.finish(this.collect());
    } catch (e) {
      this.fail(toEnsembleError(e));
    }
  }

  /** Pipeline outputs: each output's level, concatenated in lineage order. */
  private collect(): Record<string, Tensor> {
    const m = this.ex.manifest;
    const out: Record<string, Tensor> = {};
    for (const spec of m.outputs) {
      const level = m.levels[spec.name] ?? 0;
      const nodes = this.roots.flatMap((r) => r.atLevel(level));
      const parts: Tensor[] = [];
      for (const n of nodes) {
        const t = n.tensors.get(spec.name);
        if (!t) throw new EnsembleError(`output '${spec.name}' was not produced for item ${n.key}`);
        parts.push(t);
      }
      out[spec.name] = parts.length ? stackRows(parts) : emptyRows(spec.datatype, spec.shape.slice(1));
    }
    return out;
  }

  private records(): StageRunRecord[] {
    // Stages the request never reached (a failure upstream) would only be noise in the record.
    return [...this.stats.values()].map((s) => s.toRecord()).filter((r) => r.items > 0 || r.error !== undefined);
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
    // The record must say where the request was when it ended (a timeout names the stuck stage).
    for (const s of this.stats.values()) if (s.unfinished > 0) s.failed(`unfinished: ${err.message}`);
    this.reject(new RunFailure(err, this.records()));
  }
}
