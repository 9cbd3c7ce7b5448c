import { InvokeCommand, LambdaClient, type InvokeCommandOutput } from '@aws-sdk/client-lambda';
import type { Manifest, OnnxStage } from '../manifest/types.js';
import type { Item } from '../tensor/types.js';
import type { BatchResult } from '../runtime/types.js';
import { isStageOf, stageKey, type StageTransport } from '../transport/types.js';
import { LOCAL_CREDENTIALS, settingsFromEnv, type Env } from '../storage/config.js';
import { ENV, stageFunctionEnv, stageQualifierEnv } from './environment.js';
import { NotReadyError, OverloadedError, PayloadTooLargeError, StageError, TimeoutError } from '../errors.js';
import {
  SPILL_ABOVE_BYTES, decodeStageResponse, encodeStageRequest, isSpillRef, type SpillRef,
} from './payload.js';
import type { PayloadSpill } from './spill.js';
import type { TraceCarrier } from '../observability/trace-context.js';
import {
  DEFAULT_RETRY_POLICY, backoffMs, classifyInvokeError, retryAfterSeconds, sleep, type RetryPolicy,
} from './retry.js';
import { lambdaStageConcurrency } from './concurrency.js';
import { abortReason, deadlineOf, startDeadline } from '../deadline.js';
import { gatewayView, placeStages, type Placement } from '../placement/placement.js';


export interface LambdaTransportOptions {
  /** Where function names (ENSEMBLE_STAGE_FUNCTION_*) and the region come from. Default process.env. */
  env?: Env;
  /**
   * A ready client; by default one is built from `env` (ENSEMBLE_LAMBDA_ENDPOINT
   * for a local endpoint) with the SDK's own retries off, since this
   * transport retries throttles itself within the stage's deadline.
   */
  client?: LambdaClient;
  /** Where payloads over Invoke's 6 MB limit go. Without it such a batch fails with 413. */
  spill?: PayloadSpill;
  retry?: RetryPolicy;
  log?: (line: string) => void;
}

interface Target {
  /** The pipeline's name, as the stage function checks it (its address in this transport may differ). */
  pipeline: string;
  functionName: string;
  /** Published version for provisioned stages: a bare name would hit $LATEST and miss the warm instances. */
  qualifier?: string;
  /** The stage's timeout_ms: the deadline of a call whose caller gave none. */
  timeoutMs: number;
}

/**
 * Each ONNX stage is its own Lambda function, called with a synchronous
 * Invoke per batch (the batcher in front cuts a request's items into chunks
 * of the stage's batch size and keeps up to its concurrency in flight).
 * Throttles, 5xx and dropped connections are retried with backoff and full
 * jitter until the batch's deadline (the caller's signal); payloads over 6 MB travel through the
 * bucket by reference; a function error fails the batch naming the stage.
 */
export class LambdaTransport implements StageTransport {
  readonly kind = 'lambda';
  private readonly env: Env;
  private readonly client: LambdaClient;
  private readonly ownsClient: boolean;
  private readonly spill?: PayloadSpill;
  private readonly retry: RetryPolicy;
  private readonly log: (line: string) => void;
  private readonly targets = new Map<string, Target>();

  constructor(opts: LambdaTransportOptions = {}) {
    this.env = opts.env ?? process.env;
    this.ownsClient = !opts.client;
    this.client = opts.client ?? lambdaClientFromEnv(this.env);
    this.spill = opts.spill;
    this.retry = opts.retry ?? DEFAULT_RETRY_POLICY;
    this.log = opts.log ?? ((s) => console.error(`[ensemble] ${s}`));
  }

  async load(manifest: Manifest, address = manifest.name): Promise<void> {
    for (const s of manifest.stages) {
      if (s.kind !== 'onnx') continue;
      const variable = stageFunctionEnv(manifest.name, s.name);
      const functionName = this.env[variable]?.trim();
      if (!functionName) {
        throw new NotReadyError(`stage '${s.name}' of '${manifest.name}' has no Lambda function: ${variable} is not set (is the pipeline in this deployment?)`);
      }
      const target: Target = { pipeline: manifest.name, functionName, timeoutMs: s.timeoutMs };
      const qualifier = this.env[stageQualifierEnv(manifest.name, s.name)]?.trim();
      if (qualifier) target.qualifier = qualifier;
      this.targets.set(stageKey(address, s.name), target);
    }
  }

  concurrency(stage: OnnxStage): number { return lambdaStageConcurrency(stage); }

  /** The deployment plan's placement: function stages co-located with their ONNX stage run in its function, not here. */
  view(manifest: Manifest): Manifest { return gatewayView(manifest); }
  placement(manifest: Manifest): Placement { return placeStages(manifest); }

  async invoke(pipeline: string, stage: string, items: Item[], signal?: AbortSignal, trace?: TraceCarrier): Promise<BatchResult> {
    const target = this.targets.get(stageKey(pipeline, stage));
    if (!target) throw new NotReadyError(`stage '${stage}' of '${pipeline}' is not loaded`);
    // The batcher's signal carries the batch's deadline. A direct caller (profiling, tests) may give
    // none, or only a client's: then the stage's timeout_ms bounds the retries, never nothing.
    const own = deadlineOf(signal) === undefined
      ? startDeadline(target.timeoutMs, () => new TimeoutError(`stage '${stage}' timed out after ${target.timeoutMs} ms`))
      : undefined;
    try {
      const bound = own ? (signal ? AbortSignal.any([signal, own.signal]) : own.signal) : signal!;
      return await this.call(target, stage, items, { signal: bound, at: own?.at ?? deadlineOf(signal)! }, trace);
    } finally {
      own?.cancel();
    }
  }

  private async call(
    target: Target, stage: string, items: Item[], deadline: { signal: AbortSignal; at: number }, trace?: TraceCarrier,
  ): Promise<BatchResult> {
    const e0 = performance.now();
    let body = Buffer.from(JSON.stringify(encodeStageRequest(target.pipeline, stage, items, trace)), 'utf8');
    const encodeMs = performance.now() - e0;
    let spillUpMs = 0;
    let spillUpBytes = 0;
    let spilled: SpillRef | undefined;
    if (body.byteLength > SPILL_ABOVE_BYTES) {
      if (!this.spill) {
        throw new PayloadTooLargeError(`stage '${stage}': a batch of ${items.length} items is ${mb(body.byteLength)} MB, over Lambda's 6 MB invoke limit, and the gateway has no bucket to pass it through`);
      }
      const s0 = performance.now();
      spilled = await this.spill.put(body);
      spillUpMs = performance.now() - s0;
      spillUpBytes = body.byteLength;
      body = Buffer.from(JSON.stringify(spilled), 'utf8');
    }
    try {
      const i0 = performance.now();
      const out = await this.send(target, stage, body, deadline);
      const invokeWallMs = performance.now() - i0;
      const timing = { spillDownMs: 0, decodeMs: 0, responseBytes: 0, spillDownBytes: 0 };
      const result = await this.answer(out, target, stage, timing);
      // The function's read of a parked request is the request's trip through S3, with the gateway's write.
      const fnReadMs = result.transfer?.spillDownMs ?? 0;
      splitTransfer(result, { encodeMs, spillUpMs, invokeWallMs, spillDownMs: timing.spillDownMs, decodeMs: timing.decodeMs });
      result.hops = {
        invokes: 1, requestBytes: body.byteLength, responseBytes: timing.responseBytes,
        spillUpBytes, spillDownBytes: timing.spillDownBytes, spillUpMs: spillUpMs + fnReadMs, spillDownMs: timing.spillDownMs,
        roundTripMs: invokeWallMs, functionMs: result.servedMs ?? 0,
      };
      return result;
    } finally {
      // After the last attempt, not the first: a retried Invoke reads the same object.
      if (spilled) await this.forget(spilled);
    }
  }

  /** Forget the stages of the pipeline loaded at `pipeline`: its functions stay deployed, nothing else is held. */
  async unload(pipeline: string): Promise<void> {
    for (const key of [...this.targets.keys()]) if (isStageOf(key, pipeline)) this.targets.delete(key);
  }

  async close(): Promise<void> {
    this.targets.clear();
    if (this.ownsClient) this.client.destroy();
  }

  /** One Invoke, retried on throttles and transient failures while the deadline allows. */
  private async send(target: Target, stage: string, body: Buffer, { signal, at }: { signal: AbortSignal; at: number }): Promise<InvokeCommandOutput> {
    const fn = target.functionName;
    const budget = Math.max(0, Math.round(at - performance.now()));
    let throttles = 0;
    let lastThrottled = false;
    const overloaded = (after: number | undefined, inFlight = false) => new OverloadedError(
      `stage '${stage}': Lambda ${fn} is at its concurrency limit (throttled ${throttles} times within the ${budget} ms the batch had`
      + `${inFlight ? '; the next try was still running when that ran out' : ''})`,
      Math.max(1, Math.ceil(after ?? 1)));
    // A 504 from the deadline says what the gateway was waiting for. A deadline that ends the retries of a
    // throttled call answers with the last failure seen, the throttle (429, retry later), whether it struck
    // during the backoff or during the next Invoke (`inFlight`).
    const stopped = (inFlight = false): Error => {
      const r = abortReason(signal);
      if (r instanceof TimeoutError && lastThrottled) return overloaded(undefined, inFlight);
      return r instanceof TimeoutError ? new TimeoutError(`${r.message} waiting for Lambda ${fn}`) : r;
    };
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw stopped();
      try {
        return await this.client.send(
          new InvokeCommand({ FunctionName: fn, Qualifier: target.qualifier, InvocationType: 'RequestResponse', Payload: body }),
          { abortSignal: signal },
        );
      } catch (e) {
        if (signal.aborted) throw stopped(true);
        const kind = classifyInvokeError(e);
        const message = e instanceof Error ? e.message : String(e);
        if (kind === 'fatal') throw new StageError(stage, `invoking Lambda ${fn}: ${message}`, 'bad_gateway');
        if (kind === 'throttle') throttles++;
        lastThrottled = kind === 'throttle';
        const after = retryAfterSeconds(e);
        const wait = backoffMs(attempt, this.retry, after);
        // No point sleeping past the deadline: say now why the call failed, not only that it ran out of time.
        if (performance.now() + wait >= at) {
          if (kind === 'throttle') throw overloaded(after);
          throw new StageError(stage, `invoking Lambda ${fn}: ${message} (gave up after ${attempt + 1} attempts within the ${budget} ms the batch had)`, 'bad_gateway');
        }
        await sleep(wait, signal).catch(() => { throw stopped(); });
      }
    }
  }

  /** The function's answer as a batch result: its error as the stage's, a parked payload fetched and removed. */
  private async answer(
    out: InvokeCommandOutput, target: Target, stage: string, timing: { spillDownMs: number; decodeMs: number; responseBytes: number; spillDownBytes: number },
  ): Promise<BatchResult> {
    const fn = target.functionName;
    timing.responseBytes = out.Payload?.byteLength ?? 0;
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    if (out.FunctionError) {
      // The handler threw, crashed or ran out of time; Lambda's error document says which.
      let errorType: string | undefined;
      let errorMessage = text;
      try {
        const doc = JSON.parse(text) as { errorType?: string; errorMessage?: string };
        errorType = doc.errorType;
        if (typeof doc.errorMessage === 'string') errorMessage = doc.errorMessage;
      } catch { /* not JSON: keep the raw text */ }
      if (errorType === 'Sandbox.Timedout' || /Task timed out after/.test(errorMessage)) {
        throw new TimeoutError(`stage '${stage}' timed out on Lambda ${fn}: ${errorMessage}`);
      }
      // A stage's own errors already say "stage 'x' failed: "; once is enough.
      const own = `stage '${stage}' failed: `;
      if (errorMessage.startsWith(own)) errorMessage = errorMessage.slice(own.length);
      const detail = [errorType, errorMessage].filter(Boolean).join(': ') || text;
      throw new StageError(stage, `Lambda ${fn} failed (${out.FunctionError}): ${detail}`, 'bad_gateway');
    }
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      throw new StageError(stage, `Lambda ${fn} answered with non-JSON: ${text.slice(0, 200)}`, 'bad_gateway');
    }
    if (isSpillRef(payload)) {
      const ref = payload;
      if (!this.spill) throw new StageError(stage, `Lambda ${fn} answered through the bucket, but this gateway has none configured`, 'bad_gateway');
      try {
        const g0 = performance.now();
        payload = await this.spill.get(ref);
        timing.spillDownMs = performance.now() - g0;
        timing.spillDownBytes = ref.spill.bytes;
      } catch (e) {
        throw new StageError(stage, `reading the answer of Lambda ${fn}: ${e instanceof Error ? e.message : String(e)}`, 'bad_gateway');
      } finally {
        await this.forget(ref);
      }
    }
    const d0 = performance.now();
    const result = decodeStageResponse(payload, stage);
    timing.decodeMs = performance.now() - d0;
    return result;
  }

  private async forget(ref: SpillRef): Promise<void> {
    // The bucket's lifecycle rule expires what a failed delete leaves behind.
    await this.spill?.delete(ref).catch((e: unknown) => this.log(`could not delete ${ref.spill.key}: ${e instanceof Error ? e.message : String(e)}`));
  }
}

/**
 * A Lambda client for this environment: the region and credentials the
 * storage clients use, plus an optional endpoint. `maxAttempts: 1`: the
 * transport does its own retrying, bounded by each stage's deadline.
 */
export function lambdaClientFromEnv(env: Env = process.env): LambdaClient {
  const settings = settingsFromEnv(env);
  const endpoint = env[ENV.lambdaEndpoint]?.trim();
  if (!endpoint) return new LambdaClient({ region: settings.region, credentials: settings.credentials, maxAttempts: 1 });
  // A copy: the SDK marks where credentials came from on the object, and LOCAL_CREDENTIALS is frozen.
  return new LambdaClient({ region: settings.region, endpoint, credentials: settings.credentials ?? { ...LOCAL_CREDENTIALS }, maxAttempts: 1 });
}


/**
 * The batch's transfer in parts, both sides' shares summed: encoding and
 * decoding, S3 spills, and the Invoke less the handler's own duration (and
 * less the function's init, which a cold Invoke waits for). Only when the
 * stage function said how long it took; else the call's wall time less
 * compute stands for it.
 */
function splitTransfer(result: BatchResult, gw: { encodeMs: number; spillUpMs: number; invokeWallMs: number; spillDownMs: number; decodeMs: number }): void {
  if (result.servedMs === undefined) return;
  const fn = result.transfer ?? {};
  const init = result.coldStart ? result.initMs ?? 0 : 0;
  result.transfer = {
    serializeMs: gw.encodeMs + gw.decodeMs + (fn.serializeMs ?? 0),
    invokeMs: Math.max(0, gw.invokeWallMs - result.servedMs - init),
    spillUpMs: gw.spillUpMs,
    spillDownMs: gw.spillDownMs + (fn.spillDownMs ?? 0),
  };
}

function mb(bytes: number): string { return (bytes / 1048576).toFixed(1); }
