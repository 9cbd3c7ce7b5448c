import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Manifest, OnnxStage } from '../manifest/types.js';
import { S3WeightStore } from '../storage/s3-weights.js';
import { makeS3Client, settingsFromEnv, type AwsSettings, type Env } from '../storage/config.js';
import { EnsembleError } from '../errors.js';
import { DEFAULT_CACHE_DIR, ENV } from './environment.js';
import { readStages } from './stage-file.js';

/**
 * The first half of a stage function's init: which stage it serves, and its
 * weights on their way from S3 into /tmp. Nothing here loads ONNX Runtime,
 * so the entry can start this before importing the rest of the handler and
 * the download runs while onnxruntime-node and the handler's code load.
 */
export interface StageWeights {
  /** performance.now() when this began: the stage's init starts here. */
  startedAt: number;
  pipeline: string;
  /** The whole pipeline: the function stages placed with this one run here too. */
  manifest: Manifest;
  stage: OnnxStage;
  settings: AwsSettings;
  s3: S3Client;
  store: S3WeightStore;
  /** The verified local file; rejects when the download or the sha256 check fails. */
  modelPath: Promise<string>;
}

/**
 * Reads the stage from ENSEMBLE_MANIFEST (its stages file when it matches)
 * and starts resolving its weights, verified by sha256, into the cache
 * (ENSEMBLE_CACHE_DIR, else /tmp). The returned promise and its modelPath
 * never count as unhandled while the caller is still loading: whoever awaits
 * them gets the error.
 */
export function startStageWeights(env: Env): Promise<StageWeights> {
  const started = fetchStageWeights(env);
  started.then((w) => w.modelPath.catch(() => undefined), () => undefined);
  return started;
}

async function fetchStageWeights(env: Env): Promise<StageWeights> {
  const startedAt = performance.now();
  const pipeline = required(env, ENV.pipeline);
  const stageName = required(env, ENV.stage);
  const root = env.LAMBDA_TASK_ROOT ?? process.cwd();
  const { manifest } = await readStages(path.resolve(root, required(env, ENV.manifest)));
  if (manifest.name !== pipeline) {
    throw new EnsembleError(`${ENV.manifest} holds pipeline '${manifest.name}', but ${ENV.pipeline} is '${pipeline}'`);
  }
  const stage = manifest.stages.find((s) => s.name === stageName);
  if (!stage) throw new EnsembleError(`pipeline '${pipeline}' has no stage '${stageName}'`);
  if (stage.kind !== 'onnx') throw new EnsembleError(`stage '${stageName}' of '${pipeline}' is a ${stage.kind} stage; only ONNX stages get their own function`);

  const settings = settingsFromEnv(env);
  const s3 = makeS3Client(settings);
  // /tmp keyed by sha256: a warm instance (or one sharing /tmp with an earlier one) skips the download.
  const store = new S3WeightStore({ s3, bucket: settings.bucket, cacheDir: env[ENV.cacheDir] || DEFAULT_CACHE_DIR });
  const modelPath = store.resolve(stage.weights.key, stage.weights.sha256);
  modelPath.catch(() => undefined);
  return { startedAt, pipeline, manifest, stage, settings, s3, store, modelPath };
}

function required(env: Env, name: string): string {
  const v = env[name]?.trim();
  if (!v) throw new EnsembleError(`${name} is not set; the deployment plan sets it on every stage function`);
  return v;
}
