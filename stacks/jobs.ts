import type { DeploymentPlan } from '../packages/tools/src/deploy/types.js';
import { component, nameEnvironment, permissions, type Components } from './wiring.js';

/**
 * The job queues' names start with this: the SST stage first, so two stages
 * of one app in one account have queues of their own; the gateway and the
 * consumers find the queues by name from it (ENSEMBLE_JOBS_QUEUE_PREFIX).
 */
export function jobQueuePrefix(plan: DeploymentPlan): string {
  return `${$app.stage}-${plan.jobs.queuePrefix}`;
}

/** Every pipeline's job queue and dead-letter queue (with the redrive policy), as the plan lists them. */
export function jobQueues(plan: DeploymentPlan, components: Components): void {
  const prefix = jobQueuePrefix(plan);
  // The plan lists each dead-letter queue before the queue that redrives to it.
  for (const q of plan.jobs.queues) {
    const dead = q.deadLetter;
    const queue = new sst.aws.Queue(q.name, {
      visibilityTimeout: `${q.visibilityTimeoutSeconds} seconds`,
      dlq: dead ? { queue: (component(components, dead.queue) as sst.aws.Queue).arn, retry: dead.maxReceiveCount } : undefined,
      transform: { queue: { name: `${prefix}${q.queueName}`, messageRetentionSeconds: q.retentionSeconds } },
    });
    components.set(q.name, queue);
  }
}

/**
 * One consumer function per pipeline (functions/jobs.ts, packaged by
 * `npm run package` like the gateway: function stage modules inside, sharp
 * beside), with an event source mapping on its queue and one on its
 * dead-letter queue, each answering ReportBatchItemFailures.
 */
export function jobConsumers(plan: DeploymentPlan, components: Components): Map<string, sst.aws.Function> {
  const prefix = jobQueuePrefix(plan);
  const out = new Map<string, sst.aws.Function>();
  for (const c of plan.jobs.consumers) {
    const versionEnvironment = Object.fromEntries(
      Object.entries(c.versionEnv).map(([variable, name]) => [variable, (component(components, name) as sst.aws.Function).nodes.function.apply((f) => f.version)]),
    );
    const fn = new sst.aws.Function(c.name, {
      description: `Ensemble: batch job consumer of pipeline '${c.pipeline}'`,
      bundle: c.bundle,
      handler: c.handler,
      runtime: c.runtime,
      architecture: c.architecture,
      memory: `${c.memoryMb} MB`,
      timeout: `${c.timeoutSeconds} seconds`,
      environment: { ...c.environment, ...nameEnvironment(components, c.nameEnv), ...versionEnvironment, [plan.jobs.queuePrefixEnv]: prefix },
      // Its two queues, the jobs table, job inputs and results, run records, spills and its stage functions (the plan's statements).
      permissions: permissions(components, c.permissions),
    });
    for (const es of c.eventSources) {
      new aws.lambda.EventSourceMapping(`${c.name}${es.queue}Mapping`, {
        eventSourceArn: (component(components, es.queue) as sst.aws.Queue).arn,
        functionName: fn.arn,
        batchSize: es.batchSize,
        functionResponseTypes: es.functionResponseTypes,
        scalingConfig: es.maximumConcurrency === undefined ? undefined : { maximumConcurrency: es.maximumConcurrency },
      });
    }
    components.set(c.name, fn);
    out.set(c.name, fn);
  }
  return out;
}
