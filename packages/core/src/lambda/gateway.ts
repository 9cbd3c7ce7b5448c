import path from 'node:path';
import type { Context, Hono } from 'hono';
import { handle, type APIGatewayProxyResult, type LambdaContext, type LambdaEvent } from 'hono/aws-lambda';
import type { Manifest } from '../manifest/types.js';
import type { StageTransport } from '../transport/types.js';
import { findManifests, loadManifest } from '../manifest/load.js';
import { PipelineRegistry } from '../pipelines/registry.js';
import { createApp, type AppMount } from '../http/app.js';
import { DynamoRunStore } from '../storage/dynamo-runs.js';
import { makeDynamoClient, makeS3Client, settingsFromEnv, type AwsSettings, type Env } from '../storage/config.js';
import type { S3Client } from '@aws-sdk/client-s3';
import { LambdaTransport } from './transport.js';
import { PayloadSpill } from './spill.js';
import { apiKeyAccess, parseApiKeys } from '../http/api-key.js';
import { ENV } from './environment.js';
import { GatewayEmf } from '../observability/emf.js';
import { emfOptions } from './emf-options.js';
import { observers, type Observer } from '../observability/events.js';
import { ModelStatistics } from '../observability/statistics.js';
import { flushTracing, startTracing, stopTracing } from '../observability/tracing.js';


export type GatewayHandler = (event: LambdaEvent, context?: LambdaContext) => Promise<APIGatewayProxyResult>;

/** What a transport factory gets: the storage settings and an S3 client for weights. */
export interface TransportContext {
  env: Env;
  settings: AwsSettings;
  s3: S3Client;
}

export interface LambdaGatewayOptions {
  env?: Env;
  /**
   * The stage transport; default the Lambda one. A factory rather than an
   * import here, so the Lambda bundle never pulls in onnxruntime-node.
   */
  transport?: (ctx: TransportContext) => StageTransport | Promise<StageTransport>;
  log?: (s: string) => void;
  /** The access log, one line per request (default: console.log, i.e. CloudWatch). */
  requestLog?: (line: string) => void;
  /** Where the Embedded Metric Format lines go (default: console.log, i.e. CloudWatch). */
  metricsLog?: (line: string) => void;
  /** Told of every request and batch besides the CloudWatch metrics. */
  observer?: Observer;
  /**
   * Sub-apps served beside the protocol routes (the browser console), made
   * once the registry and the key rule exist. A factory here, so that core
   * never imports the packages that build them.
   */
  mounts?: (ctx: { registry: PipelineRegistry; visible: (c: Context, pipeline: string) => boolean }) => AppMount[];
}

export interface LambdaGateway {
  handler: GatewayHandler;
  app: Hono;
  registry: PipelineRegistry;
  manifests: Manifest[];
  close(): Promise<void>;
}

/** How long a response may wait for its run record to reach DynamoDB before it goes out anyway. */
export const RUN_FLUSH_MS = 3_000;

/** Time kept back from the Lambda deadline for encoding the answer. */
export const DEADLINE_MARGIN_MS = 500;

/**
 * The gateway as a Lambda handler: the same Hono app `ensemble serve` runs,
 * behind `handle()` from hono/aws-lambda. Built once per instance (module
 * scope): manifests bundled by the plan, a stage transport, run records in
 * DynamoDB, the API key guard.
 */
export async function createLambdaGateway(opts: LambdaGatewayOptions = {}): Promise<LambdaGateway> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((s: string) => console.error(`[ensemble] ${s}`));
  const root = env.LAMBDA_TASK_ROOT ?? process.cwd();
  const listed = (env[ENV.manifests] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const files = listed.length ? listed.map((f) => path.resolve(root, f)) : await findManifests(path.resolve(root, 'models'));

  // Alongside loading the pipelines: the SDK and exporter are loaded only when an OTLP endpoint is set.
  const tracing = startTracing('ensemble', env);
  const settings = settingsFromEnv(env);
  const s3 = makeS3Client(settings);
  const dynamo = makeDynamoClient(settings);
  const runs = new DynamoRunStore({
    dynamo, table: settings.runsTable,
    onError: (e) => log(`run record write failed (will retry): ${e instanceof Error ? e.message : String(e)}`),
  });
  const lambda = (ctx: TransportContext) => new LambdaTransport({ env: ctx.env, spill: new PayloadSpill(ctx.s3, ctx.settings.bucket), log });
  const transport = await (opts.transport ?? lambda)({ env, settings, s3 });
  // Per gateway instance: each Lambda instance counts the requests it served (docs/api.md, "Statistics").
  const emf = new GatewayEmf(emfOptions(env, opts.metricsLog));
  const statistics = new ModelStatistics();
  const registry = new PipelineRegistry(transport, { observer: observers([statistics, emf, opts.observer]) });

  const manifests: Manifest[] = [];
  for (const file of files) {
    // One broken pipeline must not take the others down: the registry answers 503 for it, with the reason.
    try {
      const m = await loadManifest(file);
      manifests.push(m);
      await registry.add(m);
    } catch (e) {
      log(`${file}: not served: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  // Without a key nothing but health is served: an unset secret must not mean an open endpoint.
  const access = apiKeyAccess(parseApiKeys(env[ENV.apiKey], env[ENV.apiKeys]), { required: true });
  const app = createApp({
    registry, runs, transport: transport.kind, guard: access.guard, visible: access.visible, statistics,
    mounts: opts.mounts?.({ registry, visible: access.visible }),
    log: opts.requestLog ?? ((line) => console.log(line)),
    // Lambda sets the invocation's X-Ray header in the environment: a request without traceparent joins that trace.
    hostTraceHeader: () => process.env._X_AMZN_TRACE_ID,
    // Leave time to answer and write the run record before Lambda stops the invocation.
    remainingMs: (c) => {
      const ctx = (c.env as { lambdaContext?: { getRemainingTimeInMillis?: () => number } } | undefined)?.lambdaContext;
      const left = ctx?.getRemainingTimeInMillis?.();
      return left === undefined ? undefined : left - RUN_FLUSH_MS - DEADLINE_MARGIN_MS;
    },
  });
  const inner = handle(app);
  await tracing;

  return {
    app, registry, manifests,
    async handler(event, context) {
      try {
        return await inner(event, context);
      } finally {
        // Lambda freezes the instance once we return: write the run record now, not "soon", and the spans.
        await Promise.all([flushWithin(runs, RUN_FLUSH_MS, log), flushTracing()]);
        emf.invocationEnded();
      }
    },
    async close() {
      await registry.close();
      emf.flush();
      await Promise.all([flushWithin(runs, RUN_FLUSH_MS, log), stopTracing()]);
      s3.destroy();
      dynamo.destroy();
    },
  };
}

async function flushWithin(runs: DynamoRunStore, ms: number, log: (s: string) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => { timer = setTimeout(() => r('late'), ms); });
  const outcome = await Promise.race([runs.flush().then(() => 'done' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') log(`run records not written within ${ms} ms; they stay queued for the next request`);
}
