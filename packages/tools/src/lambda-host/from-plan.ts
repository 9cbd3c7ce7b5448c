import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DeploymentPlan, JobsFunctionPlan, StageFunctionPlan } from '../deploy/types.js';
import { DEFAULT_JOBS_QUEUE_PREFIX, DEFAULT_JOBS_TABLE, type AwsSettings } from '@ensemble/core/storage/config.js';
import { COMPONENTS, ENV } from '@ensemble/core/lambda/environment.js';
import type { HostedFunction } from './types.js';

/** The repository: where functions/*.ts live when the host runs the sources. */
export const SOURCE_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** The version number the host gives a stage that is deployed with versioning (provisioned concurrency). */
export const LOCAL_PUBLISHED_VERSION = '1';

export interface HostedPlanOptions {
  /** The `root` the plan was made with: its manifest paths are relative to it. */
  planRoot: string;
  /**
   * Run each function from its package (`<packaged>/<function name>/`, as
   * `npm run package` writes them) instead of the sources under SOURCE_ROOT.
   */
  packaged?: string;
  /** Deployed names of the plan's components (bucket, table); functions keep their logical names. */
  names?: Record<string, string>;
}

/**
 * The plan's stage functions as the local host runs them: the same names,
 * handler, memory, timeout, reserved concurrency and environment that
 * `sst deploy` would give them. Name-valued variables (ENSEMBLE_BUCKET, ...)
 * get `names`; from the sources, ENSEMBLE_MANIFEST becomes absolute because
 * the code root (the repository) need not be the plan's root.
 */
export function hostedStageFunctions(plan: DeploymentPlan, opts: HostedPlanOptions): HostedFunction[] {
  return plan.stages.map((s) => hostedStage(s, opts));
}

function hostedStage(s: StageFunctionPlan, opts: HostedPlanOptions): HostedFunction {
  const environment: Record<string, string> = { ...s.environment };
  for (const [variable, component] of Object.entries(s.nameEnv)) environment[variable] = opts.names?.[component] ?? component;
  let root: string;
  if (opts.packaged) {
    root = path.resolve(opts.packaged, s.name);
  } else {
    root = SOURCE_ROOT;
    environment[ENV.manifest] = path.resolve(opts.planRoot, s.manifest);
  }
  const fn: HostedFunction = {
    name: s.name, handler: s.handler, root, memoryMb: s.memoryMb, timeoutSeconds: s.timeoutSeconds, environment,
  };
  if (s.concurrency.reserved !== undefined) fn.reservedConcurrency = s.concurrency.reserved;
  if (s.versioning) fn.versions = [LOCAL_PUBLISHED_VERSION];
  return fn;
}

/**
 * What the deployed gateway finds in its environment to reach the stages:
 * ENSEMBLE_STAGE_FUNCTION_* (function names) and, for provisioned stages,
 * ENSEMBLE_STAGE_QUALIFIER_* (the published version).
 */
export function gatewayStageEnvironment(plan: DeploymentPlan): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of plan.gateway.routes) {
    out[r.functionEnv] = r.function;
    if (r.qualifierEnv) out[r.qualifierEnv] = LOCAL_PUBLISHED_VERSION;
  }
  return out;
}

/** Deployed names of the bucket and the tables, from the storage settings. */
export function componentNames(settings: Pick<AwsSettings, 'bucket' | 'runsTable' | 'jobsTable'>): Record<string, string> {
  return { [COMPONENTS.bucket]: settings.bucket, [COMPONENTS.table]: settings.runsTable, [COMPONENTS.jobsTable]: settings.jobsTable ?? DEFAULT_JOBS_TABLE };
}

/**
 * The plan's job consumers as the local host runs them: the environment
 * `sst deploy` gives them (names from `names`, stage functions by their
 * logical names on this host, published versions as LOCAL_PUBLISHED_VERSION),
 * the queue prefix the local queues were made with, and the manifest
 * absolute when run from the sources.
 */
export function hostedJobConsumers(plan: DeploymentPlan, opts: HostedPlanOptions & { queuePrefix?: string }): HostedFunction[] {
  return plan.jobs.consumers.map((c: JobsFunctionPlan) => {
    const environment: Record<string, string> = { ...c.environment, [plan.jobs.queuePrefixEnv]: opts.queuePrefix ?? DEFAULT_JOBS_QUEUE_PREFIX };
    for (const [variable, component] of Object.entries(c.nameEnv)) environment[variable] = opts.names?.[component] ?? component;
    for (const variable of Object.keys(c.versionEnv)) environment[variable] = LOCAL_PUBLISHED_VERSION;
    let root = SOURCE_ROOT;
    if (opts.packaged) root = path.resolve(opts.packaged, c.name);
    else environment[ENV.manifests] = path.resolve(opts.planRoot, c.manifest);
    return { name: c.name, handler: c.handler, root, memoryMb: c.memoryMb, timeoutSeconds: c.timeoutSeconds, environment };
  });
}

/**
 * Variables every hosted function gets so it reaches the same S3 and
 * DynamoDB as the gateway: region, credentials and emulator endpoints. With
 * no explicit credentials (real AWS through the default chain), the
 * process's AWS_* variables are passed on.
 */
export function storageEnvironment(settings: AwsSettings, processEnv: Record<string, string | undefined> = process.env): Record<string, string> {
  const out: Record<string, string> = { AWS_REGION: settings.region };
  if (settings.credentials) {
    out.AWS_ACCESS_KEY_ID = settings.credentials.accessKeyId;
    out.AWS_SECRET_ACCESS_KEY = settings.credentials.secretAccessKey;
    if (settings.credentials.sessionToken) out.AWS_SESSION_TOKEN = settings.credentials.sessionToken;
  } else {
    for (const [k, v] of Object.entries(processEnv)) if (k.startsWith('AWS_') && v !== undefined) out[k] = v;
  }
  if (settings.s3Endpoint) out.ENSEMBLE_S3_ENDPOINT = settings.s3Endpoint;
  if (settings.dynamoEndpoint) out.ENSEMBLE_DYNAMODB_ENDPOINT = settings.dynamoEndpoint;
  if (settings.sqsEndpoint) out.ENSEMBLE_SQS_ENDPOINT = settings.sqsEndpoint;
  return out;
}
