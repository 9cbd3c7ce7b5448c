import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { Manifest } from '../manifest/types.js';
import type { Item } from '../tensor/types.js';
import type { BatchResult } from '../runtime/types.js';
import type { StageTransport } from './types.js';
import { LOCAL_CREDENTIALS, settingsFromEnv } from '../storage/config.js';
import { ENV, stageFunctionEnv, stageQualifierEnv } from '../deploy/names.js';
import { NotReadyError, OverloadedError, StageError } from '../errors.js';
import { decodeStageResponse, encodeStageRequest, payloadBytes } from './lambda-payload.js';

type Env = Record<string, string | undefined>;

export interface LambdaTransportOptions {
  /** Where function names (ENSEMBLE_STAGE_FUNCTION_*) and the region come from. Default process.env. */
  env?: Env;
  /** A ready client; by default one is built from `env` (ENSEMBLE_LAMBDA_ENDPOINT for a local endpoint). */
  client?: LambdaClient;
}

interface Target {
  functionName: string;
  /** Published version for provisioned stages: a bare name would hit $LATEST and miss the warm instances. */
  qualifier?: string;
}

/**
 * Each ONNX stage is its own Lambda function, called with a synchronous
 * Invoke per batch. Which function serves a stage comes from the environment
 * the deployment plan set on the gateway.
 */
export class LambdaTransport implements StageTransport {
  readonly kind = 'lambda';
  private readonly env: Env;
  private readonly client: LambdaClient;
  private readonly targets = new Map<string, Target>();

  constructor(opts: LambdaTransportOptions = {}) {
    this.env = opts.env ?? process.env;
    this.client = opts.client ?? lambdaClientFromEnv(this.env);
  }

  async load(manifest: Manifest): Promise<void> {
    for (const s of manifest.stages) {
      if (s.kind !== 'onnx') continue;
      const variable = stageFunctionEnv(manifest.name, s.name);
      const functionName = this.env[variable]?.trim();
      if (!functionName) {
        throw new NotReadyError(`stage '${s.name}' of '${manifest.name}' has no Lambda function: ${variable} is not set (is the pipeline in this deployment?)`);
      }
      const target: Target = { functionName };
      const qualifier = this.env[stageQualifierEnv(manifest.name, s.name)]?.trim();
      if (qualifier) target.qualifier = qualifier;
      this.targets.set(key(manifest.name, s.name), target);
    }
  }

  async invoke(pipeline: string, stage: string, items: Item[], signal?: AbortSignal): Promise<BatchResult> {
    const target = this.targets.get(key(pipeline, stage));
    if (!target) throw new NotReadyError(`stage '${stage}' of '${pipeline}' is not loaded`);
    const body = payloadBytes(encodeStageRequest(pipeline, stage, items), `stage '${stage}': a batch of ${items.length} items`);
    let out;
    try {
      out = await this.client.send(
        new InvokeCommand({ FunctionName: target.functionName, Qualifier: target.qualifier, InvocationType: 'RequestResponse', Payload: body }),
        { abortSignal: signal },
      );
    } catch (e) {
      const name = (e as { name?: string }).name;
      // Reserved concurrency reached (after the SDK's own retries): the caller should back off.
      if (name === 'TooManyRequestsException') throw new OverloadedError(`stage '${stage}': Lambda ${target.functionName} is at its concurrency limit`);
      throw new StageError(stage, `invoking Lambda ${target.functionName}: ${e instanceof Error ? e.message : String(e)}`, 502);
    }
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    if (out.FunctionError) {
      // The handler crashed or timed out; Lambda's own error document says how.
      let detail = text;
      try {
        const doc = JSON.parse(text) as { errorType?: string; errorMessage?: string };
        detail = [doc.errorType, doc.errorMessage].filter(Boolean).join(': ') || text;
      } catch { /* not JSON: keep the raw text */ }
      throw new StageError(stage, `Lambda ${target.functionName} failed (${out.FunctionError}): ${detail}`, 502);
    }
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      throw new StageError(stage, `Lambda ${target.functionName} answered with non-JSON: ${text.slice(0, 200)}`, 502);
    }
    return decodeStageResponse(payload, stage);
  }

  async close(): Promise<void> {
    this.targets.clear();
    this.client.destroy();
  }
}

/** A Lambda client for this environment: the region and credentials the storage clients use, plus an optional endpoint. */
export function lambdaClientFromEnv(env: Env = process.env): LambdaClient {
  const settings = settingsFromEnv(env);
  const endpoint = env[ENV.lambdaEndpoint]?.trim();
  if (!endpoint) return new LambdaClient({ region: settings.region, credentials: settings.credentials });
  return new LambdaClient({ region: settings.region, endpoint, credentials: settings.credentials ?? LOCAL_CREDENTIALS });
}

function key(pipeline: string, stage: string): string { return `${pipeline}/${stage}`; }
