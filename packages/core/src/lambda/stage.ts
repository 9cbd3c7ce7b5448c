import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { OnnxStage } from '../manifest/types.js';
import type { BatchResult, ColdStartSplit, StageRuntime } from '../runtime/types.js';
import { markUsage, usageSince } from '../runtime/process-usage.js';
import { lambdaFunctionOf } from '../observability/assumptions.js';
import { createOnnxRuntime } from '../runtime/onnx.js';
import { S3WeightStore } from '../storage/s3-weights.js';
import { makeS3Client, settingsFromEnv, type Env } from '../storage/config.js';
import { BadRequestError, EnsembleError } from '../errors.js';
import {
  SPILL_ABOVE_BYTES, decodeStageRequest, encodeStageFailure, encodeStageResult, isSpillRef,
  type SpillRef, type StageRequest, type StageResponsePayload,
} from './payload.js';
import { PayloadSpill } from './spill.js';
import { readStages } from './stage-file.js';
import { DEFAULT_CACHE_DIR, ENV } from './environment.js';
import { flushTracing, startTracing } from '../observability/tracing.js';
import { endStageRunSpan, startStageRunSpan } from '../observability/spans.js';
import { StageEmf } from '../observability/emf.js';
import { emfOptions } from './emf-options.js';


/** A batch result, a handled failure (bad payload, failed init), or a reference to an answer parked in the bucket. */
export type StageHandler = (event: unknown) => Promise<StageResponsePayload | SpillRef>;

interface Loaded {
  pipeline: string;
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
export async function createStageHandler(env: Env = process.env, opts: { metricsLog?: (line: string) => void } = {}): Promise<StageHandler> {
  const t0 = performance.now();
  // One Embedded Metric Format line per batch, in the function's log: no call on the request path.
  const metrics = new StageEmf(emfOptions(env, opts.metricsLog));
  let loaded: Loaded | undefined;
  let initError: unknown;
  // During init, alongside the weights: the SDK is loaded only when an OTLP endpoint is set.
  const tracing = startTracing(env[ENV.stage] ? `ensemble-${env[ENV.stage]}` : 'ensemble', env);
  try {
    loaded = await load(env);
    loaded.initMs = performance.now() - t0;
    // performance.now() counts from process start: created at module scope, as the entry does, this is the runtime and bundle load.
    if (loaded.split) loaded.split.startMs = t0;
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
    // Past 6 MB Lambda would drop the answer for an opaque error: park it in the bucket instead.
    const json = Buffer.from(JSON.stringify(answer), 'utf8');
    return json.byteLength > SPILL_ABOVE_BYTES ? spill.put(json) : answer;
  };
}

async function load(env: Env): Promise<Loaded> {
  const pipeline = required(env, ENV.pipeline);
  const stageName = required(env, ENV.stage);
  const root = env.LAMBDA_TASK_ROOT ?? process.cwd();
  // The packaged function reads its stage from the stages file written beside the manifest, when it matches the manifest.
  const manifest = await readStages(path.resolve(root, required(env, ENV.manifest)));
  if (manifest.pipeline !== pipeline) {
    throw new EnsembleError(`${ENV.manifest} holds pipeline '${manifest.pipeline}', but ${ENV.pipeline} is '${pipeline}'`);
  }
  const stage = manifest.stages.find((s) => s.name === stageName);
  if (!stage) throw new EnsembleError(`pipeline '${pipeline}' has no stage '${stageName}'`);
  if (stage.kind !== 'onnx') throw new EnsembleError(`stage '${stageName}' of '${pipeline}' is a ${stage.kind} stage; only ONNX stages get their own function`);

  const settings = settingsFromEnv(env);
  const s3: S3Client = makeS3Client(settings);
  try {
    // /tmp keyed by sha256: a warm instance (or one sharing /tmp with an earlier one) skips the download.
    const weights = new S3WeightStore({ s3, bucket: settings.bucket, cacheDir: env[ENV.cacheDir] || DEFAULT_CACHE_DIR });
    const modelPath = await weights.resolve(stage.weights.key, stage.weights.sha256);
    const w = weights.timing(stage.weights.sha256);
    const s0 = performance.now();
    const runtime = await createOnnxRuntime({ stage, modelPath });
    const split: ColdStartSplit = { fetchMs: w?.fetchMs ?? 0, hashMs: w?.hashMs ?? 0, sessionMs: performance.now() - s0 };
    // The client stays for the instance's life: big payloads come and go through the bucket.
    return { pipeline, stage, runtime, spill: new PayloadSpill(s3, settings.bucket), initMs: 0, split };
  } catch (e) {
    s3.destroy();
    throw e;
  }
}

function required(env: Env, name: string): string {
  const v = env[name]?.trim();
  if (!v) throw new EnsembleError(`${name} is not set; the deployment plan sets it on every stage function`);
  return v;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
