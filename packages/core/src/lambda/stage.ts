import type { OnnxStage } from '../manifest/types.js';
import type { BatchResult, ColdStartSplit, StageRuntime } from '../runtime/types.js';
import { markUsage, usageSince } from '../runtime/process-usage.js';
import { lambdaFunctionOf } from '../observability/assumptions.js';
import { createOnnxRuntime } from '../runtime/onnx.js';
import type { Env } from '../storage/config.js';
import { BadRequestError, EnsembleError } from '../errors.js';
import {
  SPILL_ABOVE_BYTES, decodeStageRequest, encodeStageFailure, encodeStageResult, isSpillRef, jsonByteLength,
  type SpillRef, type StageRequest, type StageResponsePayload,
} from './payload.js';
import { PayloadSpill } from './spill.js';
import { startStageWeights, type StageWeights } from './stage-weights.js';
import { ENV } from './environment.js';
import { flushTracing, startTracing } from '../observability/tracing.js';
import { endStageRunSpan, startStageRunSpan } from '../observability/spans.js';
import { StageEmf } from '../observability/emf.js';
import { emfOptions } from './emf-options.js';
import { loadColocatedStages } from '../placement/colocated.js';
import { groupOf, placeStages } from '../placement/placement.js';
import type { Manifest } from '../manifest/types.js';


export interface StageHandlerOptions {
  metricsLog?: (line: string) => void;
  /** The weights already on their way (startStageWeights, from the entry); default: started here. */
  weights?: Promise<StageWeights>;
}

/** A batch result, a handled failure (bad payload, failed init), or a reference to an answer parked in the bucket. */
export type StageHandler = (event: unknown) => Promise<StageResponsePayload | SpillRef>;

interface Loaded {
  pipeline: string;
  manifest: Manifest;
  stage: OnnxStage;
  runtime: StageRuntime;
  /** Payloads over Invoke's limit, both ways. */
  spill: PayloadSpill;
  /** Manifest, weights download and session creation together. */
  initMs: number;
  split?: ColdStartSplit;
}

/**
 * Everything a stage function does before its first request, meant to run
 * during Lambda init (module scope, so provisioned instances are truly warm):
 * read the bundled manifest named by ENSEMBLE_MANIFEST, fetch the stage's
 * weights from S3 into /tmp (verified by sha256), open the ONNX session.
 * Never rejects: a failed init becomes an error answer on every call, with
 * the reason, rather than an opaque Lambda init crash loop.
 *
 * A payload the stage cannot read (or that is meant for another stage) is
 * answered as a handled failure with its error code; a batch that fails while
 * running throws, so Lambda reports it as a function error (`Unhandled`)
 * and the gateway answers 502 naming the stage.
 */
export async function createStageHandler(env: Env = process.env, opts: StageHandlerOptions = {}): Promise<StageHandler> {
  // One Embedded Metric Format line per batch, in the function's log: no call on the request path.
  const metrics = new StageEmf(emfOptions(env, opts.metricsLog));
  let loaded: Loaded | undefined;
  let initError: unknown;
  // During init, alongside the weights: the SDK is loaded only when an OTLP endpoint is set.
  const tracing = startTracing(env[ENV.stage] ? `ensemble-${env[ENV.stage]}` : 'ensemble', env);
  try {
    const weights = await (opts.weights ?? startStageWeights(env));
    // The function stages the deployment plan placed with this one (pre-processing) run here, before session.run;
    // their modules load while the weights download and the session opens.
    const colocated = loadColocatedStages(weights.manifest, weights.stage, groupOf(placeStages(weights.manifest), weights.stage.name));
    colocated.catch(() => undefined);
    loaded = await load(weights);
    loaded.runtime = (await colocated)(loaded.runtime);
    // Init runs from the weights' start: the entry may have begun it before loading this module.
    loaded.initMs = performance.now() - weights.startedAt;
    // performance.now() counts from process start: begun at module scope, as the entry does, this is the runtime and bundle load.
    if (loaded.split) loaded.split.startMs = weights.startedAt;
  } catch (e) {
    initError = e;
    console.error(`[ensemble] stage init failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const traced = await tracing;
  // Provisioned instances initialised before any caller waited on them: no cold start to report.
  let cold = env.AWS_LAMBDA_INITIALIZATION_TYPE !== 'provisioned-concurrency';
  let firstCall = true;

  return async (event) => {
    if (!loaded) return encodeStageFailure(new EnsembleError(`stage function failed to start: ${errorText(initError)}`, 'not_ready'));
    const { spill, stage, runtime } = loaded;
    const t0 = performance.now();
    let req: StageRequest;
    let spillDownMs = 0;
    let serializeMs = 0;
    try {
      let body = event;
      if (isSpillRef(event)) { body = await spill.get(event); spillDownMs = performance.now() - t0; }
      const d0 = performance.now();
      req = decodeStageRequest(body);
      serializeMs = performance.now() - d0;
      if (req.pipeline !== loaded.pipeline || req.stage !== stage.name) {
        throw new BadRequestError(`this function serves stage '${stage.name}' of '${loaded.pipeline}', not '${req.stage}' of '${req.pipeline}'`);
      }
    } catch (e) {
      metrics.rejected({ pipeline: loaded.pipeline, stage: stage.name });
      return encodeStageFailure(e);
    }
    // The gateway's batch span when it sent one; else the X-Ray trace Lambda set for this invocation.
    const span = startStageRunSpan(stage.name, req.trace, env._X_AMZN_TRACE_ID ?? process.env._X_AMZN_TRACE_ID);
    let result: BatchResult;
    const mark = markUsage();
    try {
      result = await runtime.run(req.items);
      endStageRunSpan(span, result);
    } catch (e) {
      endStageRunSpan(span, undefined, e);
      // The whole batch failed: its line says so (every item failed), as an alarm on FailedItems expects.
      metrics.invocation({
        pipeline: loaded.pipeline, stage: stage.name, items: req.items.length, failedItems: req.items.length,
        computeMs: performance.now() - t0, coldStart: cold, initMs: firstCall ? loaded.initMs : undefined,
      });
      cold = false;
      firstCall = false;
      throw e;
    } finally {
      // Lambda freezes the instance once the handler returns: what is buffered goes now.
      if (traced) await flushTracing();
    }
    const usage = usageSince(mark);
    const initMs = firstCall ? loaded.initMs : undefined;
    const profiled: BatchResult = { ...result, coldStart: cold, initMs, cpuMs: usage.cpuMs, peakRssBytes: usage.peakRssBytes };
    if (firstCall && loaded.split) profiled.coldStartSplit = { ...loaded.split, firstRunMs: result.computeMs };
    else delete profiled.coldStartSplit;
    const e0 = performance.now();
    const answer = encodeStageResult(profiled);
    serializeMs += performance.now() - e0;
    // The handler's duration as Lambda bills it (what follows, writing these few numbers, is left out).
    const servedMs = performance.now() - t0;
    const fn = lambdaFunctionOf(env);
    if (answer.ok) {
      answer.profile = { ...answer.profile, servedMs, transfer: { serializeMs, spillDownMs } };
      if (fn) answer.profile.lambda = { ...fn, billedMs: Math.ceil(servedMs) };
    }
    metrics.invocation({
      pipeline: loaded.pipeline, stage: stage.name, items: req.items.length,
      failedItems: result.outcomes.filter((o) => !o.ok).length, computeMs: result.computeMs, coldStart: cold, initMs,
    });
    cold = false;
    firstCall = false;
    // Past 6 MB Lambda would drop the answer for an opaque error: park it in the bucket instead. Its size is
    // counted, not written out: the runtime writes the answer, once.
    if (jsonByteLength(answer) <= SPILL_ABOVE_BYTES) return answer;
    return spill.put(Buffer.from(JSON.stringify(answer), 'utf8'));
  };
}

async function load(w: StageWeights): Promise<Loaded> {
  try {
    const modelPath = await w.modelPath;
    const timing = w.store.timing(w.stage.weights.sha256);
    const s0 = performance.now();
    const runtime = await createOnnxRuntime({ stage: w.stage, modelPath });
    const split: ColdStartSplit = { fetchMs: timing?.fetchMs ?? 0, hashMs: timing?.hashMs ?? 0, sessionMs: performance.now() - s0 };
    // The client stays for the instance's life: big payloads come and go through the bucket.
    return { pipeline: w.pipeline, manifest: w.manifest, stage: w.stage, runtime, spill: new PayloadSpill(w.s3, w.settings.bucket), initMs: 0, split };
  } catch (e) {
    w.s3.destroy();
    throw e;
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
