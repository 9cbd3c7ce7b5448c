/**
 * What the engine tells observers as it works: statistics (Triton's stats
 * extension), metrics (Prometheus, CloudWatch EMF), profiles and monitors
 * are all built from these events, so they count the same things.
 * Observers run on the request path: they must be cheap and must not throw.
 * An observer module named by a manifest (`observers:`) or the server
 * (`--observer`) is one of these too: the extension point for custom
 * monitors and exporters.
 */
import type { Finding, RunRecord } from '../storage/types.js';

/** One batch a stage ran, whether it succeeded or not. */
export interface BatchEvent {
  pipeline: string;
  version: string;
  stage: string;
  /** Items in the batch. */
  size: number;
  /** The items' queue waits, summed (ms): from entering the stage's queue to the batch leaving. */
  queueMs: number;
  /** Wall time of the stage call (moving tensors to and from the stage included), ms. */
  callMs: number;
  /** The model or function itself, as the stage measured it, ms (0 when the whole batch failed). */
  computeMs: number;
  coldStart: boolean;
  initMs?: number;
  /** Items of the batch that failed on their own (the others succeeded). */
  failedItems: number;
  /** The error code when the whole batch failed. */
  error?: string;
  /**
   * Set for a function stage that ran inside another stage's call, beside its
   * model (placement/colocated.ts): the stage whose call it was. Its compute
   * and failed items are not in that stage's event.
   */
  within?: string;
  /* Profile fields, when the batch has an answer and its transport measured them. */
  /** Moving tensors to and from the stage (ms): callMs less computeMs, or the sum of the transport's split. */
  transferMs?: number;
  /** The transport's split of it (runtime/types.ts TransferSplit; spelled out here, below the runtime). */
  transfer?: { serializeMs?: number; ipcMs?: number; invokeMs?: number; spillUpMs?: number; spillDownMs?: number };
  /** The batch's trips to the stage (runtime/types.ts HopSplit): bytes and times of each Invoke, summed. */
  hops?: { invokes: number; requestBytes: number; responseBytes: number; spillUpBytes: number; spillDownBytes: number; spillUpMs: number; spillDownMs: number; roundTripMs: number; functionMs: number };
  /** CPU time of the process that ran the batch, over the batch (ms). */
  cpuMs?: number;
  peakRssBytes?: number;
  coldStartSplit?: { startMs?: number; fetchMs: number; hashMs: number; sessionMs: number; firstRunMs?: number };
  /** What Lambda bills for the batch's invocation. */
  lambda?: { billedMs: number; memoryMb: number; arch: 'x86_64' | 'arm64' };
}

/** One inference request that reached a served pipeline (unknown models are not requests of anything). */
export interface RequestStart {
  pipeline: string;
  /** The version asked for, '' for the serving one: count what is pending per pipeline. */
  version: string;
}

export interface RequestEnd extends RequestStart {
  /** Here the version that ran ('' if the request failed before one was chosen). */
  version: string;
  httpStatus: number;
  /** The ErrorCode it failed with. */
  error?: string;
  durationMs: number;
  /** Items in the request (rows of its inputs), when it got as far as decoding them. */
  items?: number;
  /** The request's run record, as it is stored (findings included). */
  record?: RunRecord;
  /** The compute of every batch the request's items rode in, summed over its stages (ms), when it ran. */
  computeMs?: number;
}

/**
 * A stage's worker process ended without being asked to (it crashed, or was
 * killed for passing its deadline) and is being replaced. A worker serves a
 * stage, not a version: a pool shared by several pipelines reports once per
 * stage it serves.
 */
export interface WorkerRestart {
  pipeline: string;
  stage: string;
  /** The ErrorCode its batch failed with ('timeout' for a worker killed at its deadline). */
  reason: string;
}

/** A monitor's finding in one request, told as it is put into the request's run record. */
export interface FindingEvent extends Finding {
  pipeline: string;
  version: string;
  runId: string;
}

export interface Observer {
  requestStarted?(e: RequestStart): void;
  requestEnded?(e: RequestEnd): void;
  batch?(e: BatchEvent): void;
  workerRestarted?(e: WorkerRestart): void;
  finding?(e: FindingEvent): void;
}

/** What an observer module is told when its pipeline (or the server) loads it. */
export interface ObserverContext {
  /** The pipeline whose manifest names the module ('' for a server-wide observer, told of every pipeline). */
  pipeline: string;
  version: string;
  /** The module's `options:` from the manifest ({} when none). */
  options: Record<string, unknown>;
  /** The manifest's folder (the working directory for a server-wide observer): where relative paths start. */
  dir: string;
}

/** An observer module's default export: makes the observer; `close` is awaited when its pipeline version unloads. */
export interface ObserverModule {
  create(ctx: ObserverContext): LoadedObserver | Promise<LoadedObserver>;
}

export interface LoadedObserver extends Observer {
  close?(): void | Promise<void>;
}

/** Several observers as one; an observer that throws is reported once and never breaks a request. */
export function observers(list: readonly (Observer | undefined)[]): Observer | undefined {
  const all = list.filter((o): o is Observer => o !== undefined);
  if (all.length === 0) return undefined;
  if (all.length === 1) return guarded(all[0]);
  const started = all.filter((o) => o.requestStarted).map(guarded);
  const ended = all.filter((o) => o.requestEnded).map(guarded);
  const batches = all.filter((o) => o.batch).map(guarded);
  const restarts = all.filter((o) => o.workerRestarted).map(guarded);
  const found = all.filter((o) => o.finding).map(guarded);
  return {
    requestStarted: (e) => { for (const o of started) o.requestStarted!(e); },
    requestEnded: (e) => { for (const o of ended) o.requestEnded!(e); },
    batch: (e) => { for (const o of batches) o.batch!(e); },
    workerRestarted: (e) => { for (const o of restarts) o.workerRestarted!(e); },
    finding: (e) => { for (const o of found) o.finding!(e); },
  };
}

function guarded(o: Observer): Observer {
  let reported = false;
  const safe = <E>(fn: ((e: E) => void) | undefined) => fn && ((e: E) => {
    try { fn.call(o, e); } catch (err) {
      if (!reported) { reported = true; console.error('an observer threw; its events are still delivered:', err); }
    }
  });
  return {
    requestStarted: safe(o.requestStarted), requestEnded: safe(o.requestEnded), batch: safe(o.batch),
    workerRestarted: safe(o.workerRestarted), finding: safe(o.finding),
  };
}
