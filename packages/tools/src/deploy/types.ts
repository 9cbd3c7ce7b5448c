/**
 * What `sst deploy` builds, as plain data. `planDeployment` derives it from the
 * manifests; stacks/ only turns it into SST components, so every decision
 * (names, sizes, links, environment) is here where a unit test can see it.
 */

/** Lambda runtimes the stage code is tested on (SST 4 would default to nodejs24.x). */
export type LambdaRuntime = 'nodejs22.x';
export type LambdaArchitecture = 'x86_64' | 'arm64';

export interface PlanOptions {
  runtime?: LambdaRuntime;
  /** Default x86_64. */
  architecture?: LambdaArchitecture;
  /** SST app name (default 'ensemble'). */
  appName?: string;
  /**
   * Folder that holds sst.config.ts: manifest and module paths are made
   * relative to it for `copyFiles`. Default: the current directory.
   */
  root?: string;
  /** Gateway memory; default the largest of 1024 and any function stage's memory_mb (they run in the gateway). */
  gatewayMemoryMb?: number;
  /** Gateway timeout; default the slowest pipeline's stage timeouts added up, capped at 900 s. */
  gatewayTimeoutSeconds?: number;
  /** Where `npm run package` puts the bundles, relative to the root (default dist/lambda). */
  packageDir?: string;
  /** Stage functions' GLIBC_TUNABLES (ENSEMBLE_STAGE_GLIBC_TUNABLES); default STAGE_MALLOC_TUNABLES, '' for none. */
  stageGlibcTunables?: string;
  /**
   * OpenTelemetry settings every function gets (telemetryFromEnv: the deploying shell's OTEL_* export
   * variables), so the stage functions send their `run` spans as the gateway sends its own.
   */
  telemetry?: Record<string, string>;
}

/** A file or folder bundled next to the handler; paths relative to `root`. */
export interface CopyFile {
  from: string;
  to?: string;
}

/** One IAM allow statement; resources by logical name, turned into ARNs by the stacks. */
export interface PermissionPlan {
  actions: string[];
  resources: ResourceRef[];
}

export type ResourceRef =
  /** Objects of a bucket: one key, or every key under a prefix when it ends in `*`. */
  | { bucket: string; key: string }
  /** The bucket itself, for listing its keys (s3:ListBucket). */
  | { bucket: string; listing: true }
  /** A table, or one of its indexes. */
  | { table: string; index?: string }
  /** A function; with `versions`, its published versions (`<arn>:*`) instead. */
  | { function: string; versions?: true }
  /** An SQS queue. */
  | { queue: string };

export interface FunctionPlan {
  /** Logical (SST component) name, PascalCase, unique in the app. */
  name: string;
  /** `<file without extension>.<export>`, relative to the root. */
  handler: string;
  runtime: LambdaRuntime;
  architecture: LambdaArchitecture;
  memoryMb: number;
  timeoutSeconds: number;
  /** Fixed environment variables. */
  environment: Record<string, string>;
  /** Environment variables set to the deployed name of another component of the plan (env var -> logical name). */
  nameEnv: Record<string, string>;
  /**
   * The IAM statements of the function's role, each action on exactly the
   * resources the code touches (no SST `link`, which grants every action on
   * a linked component).
   */
  permissions: PermissionPlan[];
  /** Files the code reads at run time (manifests, stage modules, files named in stage options), bundled as they are. */
  copyFiles: CopyFile[];
  /**
   * Packages not bundled by esbuild but copied, with their dependencies and
   * only the target platform's native binaries, into the bundle's node_modules.
   */
  install: string[];
  /** The packaged function (`npm run package` writes it; `sst deploy` uploads it as is), relative to the root. */
  bundle: string;
}

export interface StageFunctionPlan extends FunctionPlan {
  role: 'stage';
  pipeline: string;
  stage: string;
  /** Manifest path relative to the root (also ENSEMBLE_MANIFEST). */
  manifest: string;
  concurrency: { reserved?: number; provisioned?: number };
  /**
   * Function stages that run in this function, in run order
   * (placement/placement.ts decides): `moved` ones only here, `both` here and in
   * the gateway; those marked `after` run on the model's outputs, the others
   * before session.run. Empty: the function runs its model only.
   */
  colocated: { stage: string; mode: 'moved' | 'both'; after?: true }[];
  /** Modules of the co-located stages (relative to the root), bundled with the handler as the gateway's are. */
  stageModules: string[];
  /** What the gateway sends this function and what comes back besides the model's outputs (pipeline tensor names). */
  receives: string[];
  returns: string[];
  /** The model's outputs that stay in the function (only stages run after it there read them). */
  kept: string[];
  /**
   * Provisioned concurrency lives on a published version: SST must publish
   * one (`versioning: true`), and the gateway must invoke that version by
   * qualifier, or every call lands on $LATEST and pays the cold start anyway.
   */
  versioning: boolean;
}

/** How the gateway reaches one stage function. */
export interface StageRoute {
  pipeline: string;
  stage: string;
  /** Logical name of the stage function. */
  function: string;
  /** Env var holding the deployed function name. */
  functionEnv: string;
  /** Env var holding the published version to invoke (only for provisioned stages). */
  qualifierEnv?: string;
}

export interface GatewayFunctionPlan extends FunctionPlan {
  role: 'gateway';
  routes: StageRoute[];
  /** Env vars set to the published version of a stage function (env var -> logical name). */
  versionEnv: Record<string, string>;
  /** Env vars set to a secret's value (env var -> secret logical name). */
  secretEnv: Record<string, string>;
  /** Function stage modules (relative to the root) the bundle must contain: they run in the gateway. */
  stageModules: string[];
  /** Served through a Lambda function URL, no IAM auth (the API key guard does it). */
  url: { authorization: 'none'; streaming: false };
}

export interface BucketPlan {
  name: string;
  /** Objects under `prefix` are deleted `expireDays` after they were written. */
  lifecycle: { prefix: string; expireDays: number }[];
}

export type DynamoFieldType = 'string' | 'number' | 'binary';

export interface TablePlan {
  name: string;
  fields: Record<string, DynamoFieldType>;
  primaryIndex: { hashKey: string; rangeKey?: string };
  globalIndexes: Record<string, { hashKey: string; rangeKey?: string; projection: 'all' }>;
  /** The attribute holding an item's expiry time; none for tables that keep their items. */
  ttl?: string;
}

/** One SQS queue; its deployed name is `<SST stage>-<JobsPlan.queuePrefix><queueName>`, so the code finds it by name. */
export interface QueuePlan {
  /** Logical (SST component) name. */
  name: string;
  pipeline: string;
  /** The name after the prefix: the pipeline, or `<pipeline>-dlq` (jobs/queue.ts computes the same). */
  queueName: string;
  /** At least the consumer's timeout, as Lambda requires of a queue it is mapped to. */
  visibilityTimeoutSeconds: number;
  retentionSeconds: number;
  /** The redrive policy: after maxReceiveCount receives a message moves to this queue (logical name). */
  deadLetter?: { queue: string; maxReceiveCount: number };
}

/** A Lambda event source mapping from a queue to the consumer. */
export interface EventSourcePlan {
  /** Logical name of the queue. */
  queue: string;
  batchSize: number;
  /** Consumer invocations at once for this queue (scalingConfig.maximumConcurrency); unset: no cap. */
  maximumConcurrency?: number;
  /** Only the failed messages come back (FunctionResponseTypes). */
  functionResponseTypes: ['ReportBatchItemFailures'];
}

/** The batch job consumer of one pipeline: functions/jobs.ts on its queue and its dead-letter queue. */
export interface JobsFunctionPlan extends FunctionPlan {
  role: 'jobs';
  pipeline: string;
  manifest: string;
  /** Function stage modules the bundle must contain: they run in the consumer, as in the gateway. */
  stageModules: string[];
  /** Env vars set to the published version of a stage function it invokes (provisioned stages), as for the gateway. */
  versionEnv: Record<string, string>;
  eventSources: EventSourcePlan[];
}

export interface JobsPlan {
  /** The jobs table (jobs/store.ts: one meta row per job, one row per item). */
  table: TablePlan;
  /** Queue names start with `<SST stage>-` and this. */
  queuePrefix: string;
  /** Env var that carries the full prefix to the gateway and the consumers. */
  queuePrefixEnv: string;
  queues: QueuePlan[];
  consumers: JobsFunctionPlan[];
}

export interface SecretPlan {
  name: string;
  /** The gateway reads the value from this env var. */
  env: string;
}

export interface DeploymentPlan {
  app: string;
  bucket: BucketPlan;
  table: TablePlan;
  apiKey: SecretPlan;
  /** One per ONNX stage of every manifest, in manifest then stage order. */
  stages: StageFunctionPlan[];
  gateway: GatewayFunctionPlan;
  /** Batch jobs: the jobs table, a queue and a dead-letter queue per pipeline, a consumer per pipeline. */
  jobs: JobsPlan;
  /** Things that deploy but look wrong (e.g. more threads than the memory buys vCPUs). */
  warnings: string[];
}
