import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Names shared by the deployment plan and the code that runs on Lambda: the
 * gateway finds a stage function through the env var the plan sets, so both
 * sides compute it here.
 */

/** Environment variables the Lambda handlers read. */
export const ENV = {
  /** Stage function: which pipeline and stage it serves, and where its manifest is bundled. */
  pipeline: 'ENSEMBLE_PIPELINE',
  stage: 'ENSEMBLE_STAGE',
  manifest: 'ENSEMBLE_MANIFEST',
  /** Gateway: comma-separated manifest paths, relative to the bundle root. */
  manifests: 'ENSEMBLE_MANIFESTS',
  /** Gateway: 'lambda' (default) or 'local' (stages in this process; tests). */
  transport: 'ENSEMBLE_TRANSPORT',
  apiKey: 'ENSEMBLE_API_KEY',
  /** Keys scoped to pipelines: `k1=demo,ocr;k2=*` (http/api-key.ts). */
  apiKeys: 'ENSEMBLE_API_KEYS',
  /** Where weights are cached on the function's disk. */
  cacheDir: 'ENSEMBLE_CACHE_DIR',
  /** Lambda API endpoint override (like ENSEMBLE_S3_ENDPOINT). */
  lambdaEndpoint: 'ENSEMBLE_LAMBDA_ENDPOINT',
  bucket: 'ENSEMBLE_BUCKET',
  runsTable: 'ENSEMBLE_RUNS_TABLE',
  /** Batch jobs: the jobs table and the prefix of the job queues' names (storage/config.ts reads them). */
  jobsTable: 'ENSEMBLE_JOBS_TABLE',
  jobsQueuePrefix: 'ENSEMBLE_JOBS_QUEUE_PREFIX',
  /** CloudWatch namespace of the metrics both handlers log in Embedded Metric Format (default 'Ensemble'). */
  metricsNamespace: 'ENSEMBLE_METRICS_NAMESPACE',
  /** Log the metrics once per this many invocations (default 1: every invocation ends with its line). */
  metricsEvery: 'ENSEMBLE_METRICS_EVERY',
} as const;

/**
 * Where weights land on a function's disk: /tmp is the only writable place on
 * Lambda. From TMPDIR when set, so each environment of the local Lambda host
 * has its own, as each Lambda sandbox has.
 */
export const DEFAULT_CACHE_DIR = join(tmpdir(), 'ensemble');

/**
 * Key prefix of stage payloads too big for Invoke, parked in the bucket; the
 * bucket's lifecycle rule expires it (an object is normally deleted as soon
 * as it has been read).
 */
export const SPILL_PREFIX = 'spill/';
/** Days after which the bucket deletes what is left under SPILL_PREFIX. */
export const SPILL_EXPIRE_DAYS = 1;

/** Where `npm run package` writes each function's bundle, relative to the root: `<dir>/<function name>/`. */
export const PACKAGE_DIR = 'dist/lambda';

export const HANDLERS = {
  gateway: 'functions/gateway.handler',
  stage: 'functions/stage.handler',
  jobs: 'functions/jobs.handler',
} as const;

/** Logical names of the app's fixed components. */
export const COMPONENTS = {
  bucket: 'EnsembleWeights',
  table: 'EnsembleRuns',
  jobsTable: 'EnsembleJobs',
  gateway: 'EnsembleGateway',
  apiKey: 'EnsembleApiKey',
} as const;

/** `branch_a` -> `BranchA`, `cls-post` -> `ClsPost`. */
export function pascalCase(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p !== '')
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join('');
}

/** Logical name of the function serving one ONNX stage: `demo` + `branch_a` -> `DemoBranchA`. */
export function stageFunctionName(pipeline: string, stage: string): string {
  return pascalCase(pipeline) + pascalCase(stage);
}

function envPart(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** Env var on the gateway holding a stage function's deployed name. */
export function stageFunctionEnv(pipeline: string, stage: string): string {
  return `ENSEMBLE_STAGE_FUNCTION_${envPart(pipeline)}_${envPart(stage)}`;
}

/** Env var on the gateway holding the published version to invoke (provisioned stages only). */
export function stageQualifierEnv(pipeline: string, stage: string): string {
  return `ENSEMBLE_STAGE_QUALIFIER_${envPart(pipeline)}_${envPart(stage)}`;
}

/**
 * Where the gateway function finds the console's static files, relative to
 * its task root: the deployment plan copies them there, at the path they
 * have in the repository.
 */
export const CONSOLE_STATIC = 'packages/console/static';
