import path from 'node:path';
import { availableParallelism } from 'node:os';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Manifest, OnnxStage } from '@ensemble/core/manifest/types.js';
import type { Item } from '@ensemble/core/tensor/types.js';
import type { BatchResult } from '@ensemble/core/runtime/types.js';
import type { TraceCarrier } from '@ensemble/core/observability/trace-context.js';
import type { StageTransport } from '@ensemble/core/transport/types.js';
import type { Placement } from '@ensemble/core/placement/placement.js';
import type { AwsSettings } from '@ensemble/core/storage/config.js';
import { planDeployment } from '../deploy/plan.js';
import { stageGlibcTunablesFromEnv, telemetryFromEnv } from '../deploy/select.js';
import { ENV } from '@ensemble/core/lambda/environment.js';
import { LambdaTransport } from '@ensemble/core/lambda/transport.js';
import { PayloadSpill } from '@ensemble/core/lambda/spill.js';
import { LambdaHost } from './host.js';
import { componentNames, gatewayStageEnvironment, hostedJobConsumers, hostedStageFunctions, storageEnvironment } from './from-plan.js';
import { SqsEventSource } from './event-source.js';
import type { JobQueues } from '@ensemble/core/jobs/queue.js';
import { lambdaClientFromEnv } from '@ensemble/core/lambda/transport.js';
import { jobBatchSize } from '../deploy/plan.js';
import type { LambdaHostOptions } from './types.js';

export interface LocalLambdaOptions {
  settings: AwsSettings;
  s3: S3Client;
  /** Host options (port, tmpDir, log, accountConcurrency, maxEnvironments: default the cores); its functions come from each pipeline's plan. */
  host?: Omit<LambdaHostOptions, 'functions' | 'environment'>;
  log?: (line: string) => void;
}

/**
 * `ensemble serve --transport lambda`: the gateway reaches its stages the way
 * it does on AWS (LambdaTransport, the real Lambda client, spills through the
 * bucket), and the functions run in a local Lambda host started here, one
 * function per ONNX stage as planDeployment names and sizes them.
 */
export class LocalLambdaTransport implements StageTransport {
  readonly kind = 'lambda';
  /** What the deployed gateway would find in its environment; filled in as pipelines load. */
  private readonly env: Record<string, string>;
  private readonly inner: LambdaTransport;
  /** Each loaded pipeline's job consumer function and mapping settings. */
  private readonly consumers = new Map<string, { functionName: string; batchSize: number; maxConcurrency: number }>();
  private readonly sources: SqsEventSource[] = [];

  private constructor(readonly host: LambdaHost, private readonly opts: LocalLambdaOptions) {
    this.env = { ...storageEnvironment(opts.settings), [ENV.lambdaEndpoint]: host.url };
    this.inner = new LambdaTransport({ env: this.env, spill: new PayloadSpill(opts.s3, opts.settings.bucket), log: opts.log });
  }

  static async start(opts: LocalLambdaOptions): Promise<LocalLambdaTransport> {
    const host = await LambdaHost.start({
      // As many environments per function as the machine has cores: more would only share them, and pay a cold start each.
      maxEnvironments: availableParallelism(),
      ...opts.host,
      environment: storageEnvironment(opts.settings),
      log: opts.host?.log ?? opts.log,
    });
    return new LocalLambdaTransport(host, opts);
  }

  get url(): string { return this.host.url; }

  async load(manifest: Manifest): Promise<void> {
    // Planned from the filesystem root, so a manifest anywhere (and stage modules beside it) is in reach.
    const planRoot = path.parse(manifest.file).root;
    const plan = planDeployment([manifest], { root: planRoot, stageGlibcTunables: stageGlibcTunablesFromEnv(), telemetry: telemetryFromEnv() });
    const names = componentNames(this.opts.settings);
    for (const fn of hostedStageFunctions(plan, { planRoot, names })) this.host.register(fn);
    for (const fn of hostedJobConsumers(plan, { planRoot, names, queuePrefix: this.opts.settings.jobsQueuePrefix })) {
      // The consumer reaches its stage functions on this host, as on AWS it reaches Lambda.
      this.host.register({ ...fn, environment: { ...fn.environment, [ENV.lambdaEndpoint]: this.host.url } });
      // A local mapping with no cap of its own runs two invocations at once: enough to keep the stages' batches full.
      this.consumers.set(manifest.name, { functionName: fn.name, batchSize: jobBatchSize(manifest), maxConcurrency: Math.min(2, manifest.jobs?.maxConcurrency ?? 2) });
    }
    Object.assign(this.env, gatewayStageEnvironment(plan));
    await this.inner.load(manifest);
  }

  concurrency(stage: OnnxStage): number { return this.inner.concurrency(stage); }

  view(manifest: Manifest): Manifest { return this.inner.view(manifest); }
  placement(manifest: Manifest): Placement { return this.inner.placement(manifest); }

  invoke(pipeline: string, stage: string, items: Item[], signal?: AbortSignal, trace?: TraceCarrier): Promise<BatchResult> {
    return this.inner.invoke(pipeline, stage, items, signal, trace);
  }

  /**
   * Feed each pipeline's job queue to its consumer function on the host
   * through an event source mapping loop (instead of the in-process poller),
   * so jobs take the Lambda handler's path.
   */
  consumeJobs(queues: JobQueues, pipelines: string[]): void {
    const lambda = lambdaClientFromEnv(this.env);
    for (const p of pipelines) {
      const c = this.consumers.get(p);
      if (!c) continue;
      this.sources.push(new SqsEventSource({ queues, lambda, pipeline: p, ...c, log: this.opts.log }).start());
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.sources.splice(0).map((s) => s.close()));
    await this.inner.close();
    await this.host.close();
  }
}
