import { statSync } from 'node:fs';
import path from 'node:path';
import type { FunctionStage, Manifest, OnnxStage } from '@ensemble/core/manifest/types.js';
import { LAMBDA_MEMORY_MB } from '@ensemble/core/manifest/defaults.js';
import { RUNS_TABLE_KEYS } from '@ensemble/core/storage/runs-table.js';
import { EnsembleError, ManifestError } from '@ensemble/core/errors.js';
import {
  COMPONENTS, CONSOLE_STATIC, ENV, HANDLERS, PACKAGE_DIR, pascalCase, SPILL_EXPIRE_DAYS, SPILL_PREFIX, stageFunctionEnv, stageFunctionName, stageQualifierEnv,
} from '@ensemble/core/lambda/environment.js';
import { JOBS_TABLE_KEYS } from '@ensemble/core/jobs/store.js';
import { DEFAULT_QUEUE_POLICY, deadLetterQueueName, queueName } from '@ensemble/core/jobs/queue.js';
import { firstStage } from '@ensemble/core/jobs/sizing.js';
import { groupOf, placeStages, unplaced } from '@ensemble/core/placement/placement.js';
import type {
  CopyFile, DeploymentPlan, EventSourcePlan, GatewayFunctionPlan, JobsFunctionPlan, JobsPlan, QueuePlan, LambdaArchitecture, LambdaRuntime, PermissionPlan, PlanOptions, ResourceRef,
  StageFunctionPlan, StageRoute, TablePlan,
} from './types.js';

/**
 * glibc's malloc settings for a stage function's process (its GLIBC_TUNABLES; PlanOptions.stageGlibcTunables
 * replaces them, '' leaves the variable out). Creating an ONNX Runtime session copies the model several times
 * over (the file, its parsed protobuf, the initializers, the prepacked weights) into memory new to the
 * process, and with 4 KiB pages most of that time is page faults: the recogniser's (10.8 MB) session took
 * 172 ms with glibc's defaults and 73 with these, the detector's (4.7 MB) 104 and 46
 * (`npx tsx scripts/session-create.ts <model>`; docs/benchmarks.md, the twelfth pass).
 * - `hugetlb=1`: transparent huge pages for the heap (glibc 2.35 and later; an older glibc skips a tunable
 *   it does not know and applies the rest).
 * - a fixed 32 MiB mmap threshold, the largest glibc accepts on 64-bit (it ignores a larger one): the
 *   per-batch arrays of the function stages beside the model (detect-pre's input, 7.7-11 MB a page) come
 *   from the heap.
 * - a 64 MiB trim threshold: freed memory is kept for the next batch instead of returned and faulted in
 *   again. A function's memory is its own, so what is kept costs nothing else.
 * The two thresholds are where glibc's own dynamic ones end up once it has freed a 32 MiB block; fixed, they
 * start there.
 */
export const STAGE_MALLOC_TUNABLES = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864';

/** Lambda's hard limits. */
export const LAMBDA_LIMITS = {
  memoryMb: LAMBDA_MEMORY_MB,
  timeoutSeconds: { min: 1, max: 900 },
  /** All environment variables of one function together. */
  environmentBytes: 4096,
  functionNameLength: 64,
  /** Memory that buys one full vCPU; Lambda tops out at 6. */
  mbPerVcpu: 1769,
  maxVcpus: 6,
} as const;

export const DEFAULT_RUNTIME: LambdaRuntime = 'nodejs22.x';
export const DEFAULT_ARCHITECTURE: LambdaArchitecture = 'x86_64';
export const DEFAULT_APP_NAME = 'ensemble';
export const DEFAULT_GATEWAY_MEMORY_MB = 1024;

/** Native addons: copied into the bundle for the target platform only, never bundled by esbuild. */
export const STAGE_INSTALL = ['onnxruntime-node'] as const;
/** Function stages (image pre/post-processing) run in the gateway and may use sharp. */
export const GATEWAY_INSTALL = ['sharp'] as const;

/**
 * The functions, storage and wiring for serving `manifests` on Lambda: one
 * function per ONNX stage (its memory, timeout and concurrency from the
 * manifest) and one gateway that runs the DAG and the function stages,
 * allowed to invoke exactly the stage functions it calls; every function's
 * IAM statements name only the actions and resources its code uses. Calls no AWS and reads no file
 * contents; it only checks which function stage options name files (those
 * are bundled with the gateway).
 */
export function planDeployment(manifests: Manifest[], opts: PlanOptions = {}): DeploymentPlan {
  const tunables = opts.stageGlibcTunables ?? STAGE_MALLOC_TUNABLES;
  const telemetry = opts.telemetry ?? {};
  const root = path.resolve(opts.root ?? process.cwd());
  const runtime = opts.runtime ?? DEFAULT_RUNTIME;
  const architecture = opts.architecture ?? DEFAULT_ARCHITECTURE;
  const app = opts.appName ?? DEFAULT_APP_NAME;
  const packageDir = (opts.packageDir ?? PACKAGE_DIR).split(path.sep).join('/').replace(/\/+$/, '');
  const warnings: string[] = [];

  const seenPipelines = new Map<string, Manifest>();
  for (const m of manifests) {
    const other = seenPipelines.get(m.name);
    if (other) {
      throw new EnsembleError(`pipeline '${m.name}' is defined twice: ${relative(root, other.file, m)} and ${relative(root, m.file, m)}`);
    }
    seenPipelines.set(m.name, m);
  }

  // Every logical name and env var must be unique; remember who took it for the error message.
  const logicalOwners = new Map<string, string>(Object.values(COMPONENTS).map((n) => [n, `the app's own '${n}'`]));
  const envOwners = new Map<string, string>();

  const stages: StageFunctionPlan[] = [];
  const routes: StageRoute[] = [];
  for (const m of manifests) {
    const manifest = relative(root, m.file, m);
    const moduleFiles = functionModules(root, m);
    const placement = placeStages(m);
    for (const f of unplaced(m, placement)) {
      throw new ManifestError(manifest, `pipeline '${m.name}', stage '${f.name}'`, 'placement: with_model, but no ONNX stage\'s function can run it: '
        + 'it must feed exactly one ONNX stage at its lineage (and every tensor that would cross must be typed), '
        + 'or read an output of one ONNX stage that has no `when`, and otherwise only what that stage\'s function has (what the stages before the model there make, what it receives), and feed no ONNX stage; '
        + 'and be no fan-out, no `when` stage, with no per-request inputs or batch axes');
    }
    for (const s of m.stages) {
      if (s.kind !== 'onnx') continue;
      const group = groupOf(placement, s.name)!;
      const colocated = group.colocated.map((c) => m.stages.find((x) => x.name === c.stage)!);
      const who = `pipeline '${m.name}' stage '${s.name}'`;
      const fail = (field: string, message: string): never => {
        throw new ManifestError(manifest, `pipeline '${m.name}', stage '${s.name}'`, `${field}: ${message}`);
      };

      const name = stageFunctionName(m.name, s.name);
      claim(logicalOwners, name, who, (owner) => fail('name', `its function name '${name}' is also the name of ${owner}; rename one of them`));
      const functionEnv = stageFunctionEnv(m.name, s.name);
      claim(envOwners, functionEnv, who, (owner) => fail('name', `its gateway variable ${functionEnv} is also the variable of ${owner}; rename one of them`));

      if (s.weights.key.startsWith(SPILL_PREFIX)) {
        fail('weights.key', `'${s.weights.key}' is under ${SPILL_PREFIX}, where the bucket deletes objects after ${SPILL_EXPIRE_DAYS} day(s); use another prefix`);
      }
      // The co-located stages run in this function: it needs their memory, and time for them too.
      const memoryMb = Math.max(s.scale.memoryMb, ...colocated.map((c) => c.scale.memoryMb));
      checkMemory(memoryMb, (msg) => fail('scale.memory_mb', msg));
      const timeoutSeconds = stageTimeoutSeconds({ ...s, timeoutMs: s.timeoutMs + colocated.reduce((n, c) => n + c.timeoutMs, 0) }, (msg) => fail('timeout_ms', msg));
      const concurrency = stageConcurrency(s, (field, msg) => fail(field, msg));
      const versioning = concurrency.provisioned !== undefined;

      const vcpus = vcpusFor(s.scale.memoryMb);
      // `threads: auto` is resolved again in the function, to the vCPUs its memory buys.
      if (!s.scale.autoThreads && s.scale.threads > Math.ceil(vcpus)) {
        warnings.push(`${who}: scale.threads ${s.scale.threads} but memory_mb ${s.scale.memoryMb} buys about ${round1(vcpus)} vCPU on Lambda; raise memory_mb (${LAMBDA_LIMITS.mbPerVcpu} MB per vCPU) or lower threads`);
      }

      stages.push({
        role: 'stage',
        name,
        pipeline: m.name,
        stage: s.name,
        manifest,
        handler: HANDLERS.stage,
        runtime,
        architecture,
        memoryMb,
        timeoutSeconds,
        concurrency,
        colocated: group.colocated.map((c) => (c.after ? { stage: c.stage, mode: c.mode, after: true } : { stage: c.stage, mode: c.mode })),
        stageModules: [...new Set(colocated.map((c) => relative(root, (c as FunctionStage).module, m)))],
        receives: group.inputs,
        returns: group.returns,
        kept: group.kept ?? [],
        versioning,
        environment: { ...telemetry, [ENV.pipeline]: m.name, [ENV.stage]: s.name, [ENV.manifest]: manifest, ...(tunables ? { GLIBC_TUNABLES: tunables } : {}) },
        nameEnv: { [ENV.bucket]: COMPONENTS.bucket, [ENV.runsTable]: COMPONENTS.table },
        permissions: stagePermissions(s),
        // loadManifest checks that function stage modules exist, so they ride along even here.
        copyFiles: copies([
          manifest, ...moduleFiles, ...labelFiles(root, m), ...monitorFiles(root, m),
          ...(colocated.length ? stageOptionFiles(root, { ...m, stages: colocated }) : []),
        ]),
        // Co-located function stages may use sharp, as in the gateway.
        install: colocated.length ? [...STAGE_INSTALL, ...GATEWAY_INSTALL] : [...STAGE_INSTALL],
        bundle: `${packageDir}/${name}`,
      });

      const route: StageRoute = { pipeline: m.name, stage: s.name, function: name, functionEnv };
      if (versioning) {
        route.qualifierEnv = stageQualifierEnv(m.name, s.name);
        claim(envOwners, route.qualifierEnv, who, (owner) => fail('name', `its gateway variable ${route.qualifierEnv} is also the variable of ${owner}; rename one of them`));
      }
      routes.push(route);
    }
  }

  const gateway = planGateway(manifests, { root, runtime, architecture, routes, packageDir, opts });
  const jobs = planJobs(manifests, { root, runtime, architecture, routes, packageDir, opts, app, logicalOwners });
  gateway.nameEnv[ENV.jobsTable] = jobs.table.name;
  gateway.permissions.push(...gatewayJobPermissions(jobs));
  checkEnvironmentSize(gateway);
  for (const s of stages) checkEnvironmentSize(s);
  for (const c of jobs.consumers) checkEnvironmentSize(c);

  return {
    app,
    bucket: { name: COMPONENTS.bucket, lifecycle: [{ prefix: SPILL_PREFIX, expireDays: SPILL_EXPIRE_DAYS }] },
    table: runsTablePlan(),
    apiKey: { name: COMPONENTS.apiKey, env: ENV.apiKey },
    stages,
    gateway,
    jobs,
    warnings,
  };
}

/** Receives before the dead-letter queue when the manifest does not say (jobs/queue.ts's local default too). */
export const DEFAULT_JOB_MAX_RECEIVES = DEFAULT_QUEUE_POLICY.maxReceives;
/** The dead-letter queue keeps what it holds for SQS's longest retention, 14 days. */
const DLQ_RETENTION_SECONDS = 14 * 24 * 3600;
const QUEUE_RETENTION_SECONDS = 4 * 24 * 3600;

/** The jobs table as jobs/store.ts expects it. */
export function jobsTablePlan(): TablePlan {
  const k = JOBS_TABLE_KEYS;
  return { name: COMPONENTS.jobsTable, fields: { [k.partitionKey]: 'string', [k.sortKey]: 'string' }, primaryIndex: { hashKey: k.partitionKey, rangeKey: k.sortKey }, globalIndexes: {} };
}

/** A pipeline's messages per consumer invocation: its first stage's batch (one Invoke per stage per batch), at most SQS's 10. */
export function jobBatchSize(m: Manifest): number {
  return m.jobs?.batchSize ?? Math.max(1, Math.min(10, firstStage(m).batch.maxSize));
}

/**
 * Per pipeline: a job queue with its dead-letter queue (the redrive policy
 * from `jobs.max_receives`), and a consumer function (functions/jobs.ts)
 * mapped to both with ReportBatchItemFailures, the batch sized for the
 * first stage and the concurrency capped by `jobs.max_concurrency`. The
 * consumer runs the pipeline's function stages itself and invokes its ONNX
 * stage functions, as the gateway does.
 */
function planJobs(manifests: Manifest[], o: GatewayInputs & { app: string; logicalOwners: Map<string, string> }): JobsPlan {
  const { root, runtime, architecture, routes, packageDir } = o;
  const table = jobsTablePlan();
  const queues: QueuePlan[] = [];
  const consumers: JobsFunctionPlan[] = [];
  for (const m of manifests) {
    const manifest = relative(root, m.file, m);
    const base = pascalCase(m.name);
    const name = `${base}Jobs`;
    const queue = `${base}JobQueue`;
    const dead = `${base}JobDeadLetters`;
    for (const n of [name, queue, dead]) {
      claim(o.logicalOwners, n, `pipeline '${m.name}' batch jobs`, (owner) => {
        throw new ManifestError(manifest, `pipeline '${m.name}'`, `jobs: the name '${n}' is also the name of ${owner}; rename one of them`);
      });
    }
    const modules = functionModules(root, m);
    const memoryMb = Math.max(DEFAULT_GATEWAY_MEMORY_MB, ...m.stages.filter((s) => s.kind === 'function').map((s) => s.scale.memoryMb));
    // A batch's items run side by side, so one item's way through every stage bounds the invocation.
    const timeoutSeconds = Math.min(LAMBDA_LIMITS.timeoutSeconds.max, Math.max(30, m.stages.reduce((sum, s) => sum + Math.ceil(s.timeoutMs / 1000), 0)));
    const own = routes.filter((r) => r.pipeline === m.name);
    const nameEnv: Record<string, string> = { [ENV.bucket]: COMPONENTS.bucket, [ENV.runsTable]: COMPONENTS.table, [ENV.jobsTable]: table.name };
    for (const r of own) nameEnv[r.functionEnv] = r.function;
    queues.push(
      { name: dead, pipeline: m.name, queueName: deadLetterQueueName('', m.name), visibilityTimeoutSeconds: timeoutSeconds, retentionSeconds: DLQ_RETENTION_SECONDS },
      {
        name: queue, pipeline: m.name, queueName: queueName('', m.name), visibilityTimeoutSeconds: Math.max(DEFAULT_QUEUE_POLICY.visibilitySeconds, timeoutSeconds),
        retentionSeconds: QUEUE_RETENTION_SECONDS, deadLetter: { queue: dead, maxReceiveCount: m.jobs?.maxReceives ?? DEFAULT_JOB_MAX_RECEIVES },
      },
    );
    const main: EventSourcePlan = { queue, batchSize: jobBatchSize(m), functionResponseTypes: ['ReportBatchItemFailures'] };
    if (m.jobs?.maxConcurrency !== undefined) main.maximumConcurrency = m.jobs.maxConcurrency;
    consumers.push({
      role: 'jobs',
      name,
      pipeline: m.name,
      manifest,
      handler: HANDLERS.jobs,
      runtime,
      architecture,
      memoryMb,
      timeoutSeconds,
      // The stacks add ENV.jobsQueuePrefix: the queue names hold the SST stage, which the plan does not know.
      environment: { ...(o.opts.telemetry ?? {}), [ENV.manifests]: manifest, [ENV.transport]: 'lambda' },
      nameEnv,
      versionEnv: Object.fromEntries(own.filter((r) => r.qualifierEnv).map((r) => [r.qualifierEnv!, r.function])),
      permissions: consumerPermissions(own, queue, dead, table.name),
      copyFiles: copies([manifest, ...modules, ...stageOptionFiles(root, m), ...labelFiles(root, m)]),
      install: [...GATEWAY_INSTALL],
      bundle: `${packageDir}/${name}`,
      stageModules: [...new Set(modules)],
      // Dead letters are few and each is one conditional write: ten at a time, no cap.
      eventSources: [main, { queue: dead, batchSize: 10, functionResponseTypes: ['ReportBatchItemFailures'] }],
    });
  }
  return { table, queuePrefix: `${o.app}-jobs-`, queuePrefixEnv: ENV.jobsQueuePrefix, queues, consumers };
}

/**
 * The consumer of one pipeline: receives, deletes and re-hides messages of
 * its own two queues; reads job inputs (any key: a job names its inputs by
 * key or prefix) and writes results under any output prefix; reads and
 * writes the jobs table; writes run records; parks and reads spills; and
 * invokes its pipeline's stage functions.
 */
function consumerPermissions(own: StageRoute[], queue: string, dead: string, jobsTable: string): PermissionPlan[] {
  const { bucket, table } = COMPONENTS;
  const out: PermissionPlan[] = [
    { actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], resources: [{ queue }, { queue: dead }] },
    { actions: ['s3:GetObject'], resources: [{ bucket, key: '*' }] },
    { actions: ['s3:PutObject'], resources: [{ bucket, key: '*' }] },
    { actions: ['s3:DeleteObject'], resources: [{ bucket, key: `${SPILL_PREFIX}*` }] },
    { actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:Query'], resources: [{ table: jobsTable }] },
    { actions: ['dynamodb:PutItem', 'dynamodb:BatchWriteItem'], resources: [{ table }] },
  ];
  if (own.length) {
    out.push({
      actions: ['lambda:InvokeFunction'],
      resources: own.flatMap((r): ResourceRef[] => (r.qualifierEnv ? [{ function: r.function }, { function: r.function, versions: true }] : [{ function: r.function }])),
    });
  }
  return out;
}

/**
 * The gateway queues job items (SendMessage on every job queue, GetQueueUrl to
 * find them), lists and reads the inputs a job names, writes the item list
 * and results, and reads and writes the jobs table (create, status, cancel,
 * recount, results).
 */
function gatewayJobPermissions(jobs: JobsPlan): PermissionPlan[] {
  const { bucket } = COMPONENTS;
  const mainQueues = jobs.queues.filter((q) => q.deadLetter).map((q): ResourceRef => ({ queue: q.name }));
  const out: PermissionPlan[] = [
    { actions: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:DescribeTable'], resources: [{ table: jobs.table.name }] },
    { actions: ['s3:ListBucket'], resources: [{ bucket, listing: true }] },
    { actions: ['s3:GetObject', 's3:PutObject'], resources: [{ bucket, key: '*' }] },
  ];
  if (mainQueues.length) out.push({ actions: ['sqs:SendMessage', 'sqs:GetQueueUrl'], resources: mainQueues });
  return out;
}

/** The runs table as the storage code expects it (see storage/runs-table.ts). */
export function runsTablePlan(): TablePlan {
  const k = RUNS_TABLE_KEYS;
  return {
    name: COMPONENTS.table,
    fields: { [k.partitionKey]: 'string', [k.index.partitionKey]: 'string', [k.index.sortKey]: 'string' },
    primaryIndex: { hashKey: k.partitionKey },
    globalIndexes: { [k.index.name]: { hashKey: k.index.partitionKey, rangeKey: k.index.sortKey, projection: 'all' } },
    ttl: k.ttl,
  };
}

interface GatewayInputs {
  root: string;
  runtime: LambdaRuntime;
  architecture: LambdaArchitecture;
  routes: StageRoute[];
  packageDir: string;
  opts: PlanOptions;
}

function planGateway(manifests: Manifest[], { root, runtime, architecture, routes, packageDir, opts }: GatewayInputs): GatewayFunctionPlan {
  const manifestPaths = manifests.map((m) => relative(root, m.file, m));
  const modules = manifests.flatMap((m) => functionModules(root, m));
  const optionFiles = manifests.flatMap((m) => [...stageOptionFiles(root, m), ...labelFiles(root, m), ...monitorFiles(root, m)]);

  const functionStageMemory = manifests.flatMap((m) => m.stages.filter((s) => s.kind === 'function').map((s) => s.scale.memoryMb));
  const memoryMb = opts.gatewayMemoryMb ?? Math.max(DEFAULT_GATEWAY_MEMORY_MB, ...functionStageMemory);
  checkMemory(memoryMb, (msg) => { throw new EnsembleError(`gateway memory: ${msg}`); });

  // A request may wait on every stage in turn; the gateway must outlive that.
  const perPipeline = manifests.map((m) => m.stages.reduce((sum, s) => sum + Math.ceil(s.timeoutMs / 1000), 0));
  const timeoutSeconds = opts.gatewayTimeoutSeconds ?? Math.min(LAMBDA_LIMITS.timeoutSeconds.max, Math.max(30, ...perPipeline));
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < LAMBDA_LIMITS.timeoutSeconds.min || timeoutSeconds > LAMBDA_LIMITS.timeoutSeconds.max) {
    throw new EnsembleError(`gateway timeout: ${timeoutSeconds} s is outside Lambda's ${LAMBDA_LIMITS.timeoutSeconds.min}..${LAMBDA_LIMITS.timeoutSeconds.max} s`);
  }

  const nameEnv: Record<string, string> = { [ENV.bucket]: COMPONENTS.bucket, [ENV.runsTable]: COMPONENTS.table };
  const versionEnv: Record<string, string> = {};
  for (const r of routes) {
    nameEnv[r.functionEnv] = r.function;
    if (r.qualifierEnv) versionEnv[r.qualifierEnv] = r.function;
  }

  return {
    role: 'gateway',
    name: COMPONENTS.gateway,
    handler: HANDLERS.gateway,
    runtime,
    architecture,
    memoryMb,
    timeoutSeconds,
    environment: { ...(opts.telemetry ?? {}), [ENV.manifests]: manifestPaths.join(','), [ENV.transport]: 'lambda' },
    nameEnv,
    versionEnv,
    secretEnv: { [ENV.apiKey]: COMPONENTS.apiKey },
    stageModules: [...new Set(modules)],
    permissions: gatewayPermissions(routes),
    // The console's page and scripts: served by the gateway at /console.
    copyFiles: [...copies([...manifestPaths, ...modules, ...optionFiles]), { from: CONSOLE_STATIC }],
    install: [...GATEWAY_INSTALL],
    bundle: `${packageDir}/${COMPONENTS.gateway}`,
    routes,
    url: { authorization: 'none', streaming: false },
  };
}

/**
 * A stage function reads its own weights and the request payloads the
 * gateway parks under spill/, and parks answers too big for Invoke there
 * (the gateway deletes them after reading). Nothing else: no other
 * pipeline's weights, no DynamoDB.
 */
function stagePermissions(s: OnnxStage): PermissionPlan[] {
  const bucket = COMPONENTS.bucket;
  const spill = { bucket, key: `${SPILL_PREFIX}*` };
  return [
    { actions: ['s3:GetObject'], resources: [{ bucket, key: s.weights.key }, spill] },
    { actions: ['s3:PutObject'], resources: [spill] },
  ];
}

/**
 * The gateway parks big payloads under spill/ and deletes them, writes and
 * reads run records (by id, and by pipeline through the index), and invokes
 * exactly its stage functions (by published version for provisioned ones).
 * It reads no weights: its ONNX stages run in their own functions.
 */
function gatewayPermissions(routes: StageRoute[]): PermissionPlan[] {
  const { bucket, table } = COMPONENTS;
  const out: PermissionPlan[] = [
    { actions: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'], resources: [{ bucket, key: `${SPILL_PREFIX}*` }] },
    {
      actions: ['dynamodb:PutItem', 'dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:Query'],
      resources: [{ table }, { table, index: RUNS_TABLE_KEYS.index.name }],
    },
  ];
  if (routes.length) {
    out.push({
      actions: ['lambda:InvokeFunction'],
      resources: routes.flatMap((r): ResourceRef[] => (r.qualifierEnv ? [{ function: r.function }, { function: r.function, versions: true }] : [{ function: r.function }])),
    });
  }
  return out;
}

function stageTimeoutSeconds(s: OnnxStage, fail: (msg: string) => never): number {
  if (!(s.timeoutMs > 0)) fail(`${s.timeoutMs} is not a positive number of milliseconds`);
  const seconds = Math.max(LAMBDA_LIMITS.timeoutSeconds.min, Math.ceil(s.timeoutMs / 1000));
  if (seconds > LAMBDA_LIMITS.timeoutSeconds.max) {
    fail(`${s.timeoutMs} ms is over Lambda's ${LAMBDA_LIMITS.timeoutSeconds.max} s limit`);
  }
  return seconds;
}

function stageConcurrency(
  s: OnnxStage, fail: (field: string, msg: string) => never,
): { reserved?: number; provisioned?: number } {
  const { reservedConcurrency: reserved, provisionedConcurrency: provisioned } = s.scale;
  const out: { reserved?: number; provisioned?: number } = {};
  if (reserved !== undefined) {
    if (!Number.isInteger(reserved) || reserved < 0) fail('scale.reserved_concurrency', `${reserved} is not a whole number`);
    // Reserved 0 is Lambda's kill switch: every call would be throttled.
    if (reserved === 0) fail('scale.reserved_concurrency', '0 would throttle every call to the stage; leave it out for no limit');
    out.reserved = reserved;
  }
  if (provisioned !== undefined && provisioned !== 0) {
    if (!Number.isInteger(provisioned) || provisioned < 0) fail('scale.provisioned_concurrency', `${provisioned} is not a whole number`);
    if (reserved !== undefined && provisioned > reserved) {
      fail('scale.provisioned_concurrency', `${provisioned} exceeds scale.reserved_concurrency (${reserved})`);
    }
    out.provisioned = provisioned;
  }
  return out;
}

function checkMemory(mb: number, fail: (msg: string) => never): void {
  const { min, max } = LAMBDA_LIMITS.memoryMb;
  if (!Number.isInteger(mb) || mb < min || mb > max) fail(`${mb} MB is outside Lambda's ${min}..${max} MB`);
}

/**
 * Lambda caps a function's environment at 4 KB. Deployed names are not known
 * here, so count each name-valued variable at the longest a Lambda name can be.
 */
function checkEnvironmentSize(f: { name: string; environment: Record<string, string>; nameEnv: Record<string, string>; versionEnv?: Record<string, string>; secretEnv?: Record<string, string> }): void {
  let bytes = 0;
  for (const [k, v] of Object.entries(f.environment)) bytes += k.length + Buffer.byteLength(v);
  for (const k of Object.keys(f.nameEnv)) bytes += k.length + LAMBDA_LIMITS.functionNameLength;
  for (const k of Object.keys(f.versionEnv ?? {})) bytes += k.length + 10;
  for (const k of Object.keys(f.secretEnv ?? {})) bytes += k.length + 256;
  if (bytes > LAMBDA_LIMITS.environmentBytes) {
    throw new EnsembleError(`function '${f.name}': its environment would take about ${bytes} bytes, over Lambda's ${LAMBDA_LIMITS.environmentBytes}; deploy fewer pipelines per app`);
  }
}

function claim(owners: Map<string, string>, key: string, who: string, onTaken: (owner: string) => never): void {
  const owner = owners.get(key);
  if (owner !== undefined) onTaken(owner);
  owners.set(key, who);
}

/** Outputs' `labels_file`s: loading the manifest reads them, so every function that loads it ships them. */
function labelFiles(root: string, m: Manifest): string[] {
  return m.outputs.flatMap((o) => (o.labelsFile ? [relative(root, o.labelsFile, m)] : []));
}

/** Modules a manifest names (function stages, observers), relative to the root: loading it checks they exist. */
function functionModules(root: string, m: Manifest): string[] {
  return [
    ...m.stages.flatMap((s) => (s.kind === 'function' ? [relative(root, s.module, m)] : [])),
    ...(m.observers ?? []).map((o) => relative(root, o.module, m)),
  ];
}

/** Drift reference files: loading the manifest reads them, so every function that loads it ships them. */
function monitorFiles(root: string, m: Manifest): string[] {
  return [...m.inputs, ...m.outputs].flatMap((t) => (t.monitors ?? []).flatMap((mon) => (
    mon.rule === 'drift' && mon.reference.kind === 'file' ? [relative(root, mon.reference.file, m)] : [])));
}

/**
 * Files the function stages read through their options (the OCR
 * dictionary): every string option that names an existing file, relative to
 * the manifest's folder. They run in the gateway, so they ship with it.
 */
function stageOptionFiles(root: string, m: Manifest): string[] {
  const out: string[] = [];
  for (const s of m.stages) {
    if (s.kind !== 'function') continue;
    for (const [key, value] of Object.entries(s.options)) {
      if (typeof value !== 'string' || value === '' || !/[\\/.]/.test(value)) continue;
      const file = path.resolve(m.dir, value);
      if (!isFile(file)) continue;
      const rel = path.relative(root, file);
      if (rel.startsWith('..') || path.isAbsolute(rel)) {
        throw new EnsembleError(`pipeline '${m.name}', stage '${s.name}': options.${key} names ${file}, outside ${root}, so it cannot be bundled with the gateway`);
      }
      out.push(rel.split(path.sep).join('/'));
    }
  }
  return out;
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** `file` relative to the root with forward slashes; it must be inside the root to be bundled. */
function relative(root: string, file: string, m: Manifest): string {
  const rel = path.relative(root, path.resolve(file));
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new EnsembleError(`pipeline '${m.name}': ${file} is outside ${root}, so it cannot be bundled with the functions`);
  }
  return rel.split(path.sep).join('/');
}

function copies(files: string[]): CopyFile[] {
  return [...new Set(files)].map((from) => ({ from }));
}

function vcpusFor(memoryMb: number): number {
  return Math.min(LAMBDA_LIMITS.maxVcpus, memoryMb / LAMBDA_LIMITS.mbPerVcpu);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
