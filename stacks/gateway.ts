import type { DeploymentPlan } from '../packages/tools/src/deploy/types.js';
import { nameEnvironment, permissions, type Components } from './wiring.js';
import { jobQueuePrefix } from './jobs.js';

/**
 * The gateway function behind a Lambda function URL (docs/deploy.md says why
 * not API Gateway), allowed what the plan's statements say: the spills, the
 * run records, invoking exactly its stage functions, and queueing job items. The API key comes
 * from the `EnsembleApiKey` secret.
 */
export function gateway(plan: DeploymentPlan, components: Components, stages: Map<string, sst.aws.Function>) {
  const g = plan.gateway;
  const apiKey = new sst.Secret(plan.apiKey.name);

  const stage = (name: string): sst.aws.Function => {
    const fn = stages.get(name);
    if (!fn) throw new Error(`the deployment plan routes to stage function '${name}', which was not created`);
    return fn;
  };
  const versionEnvironment = Object.fromEntries(
    Object.entries(g.versionEnv).map(([variable, name]) => [variable, stage(name).nodes.function.apply((f) => f.version)]),
  );
  const secretEnvironment = Object.fromEntries(Object.keys(g.secretEnv).map((variable) => [variable, apiKey.value]));

  const fn = new sst.aws.Function(g.name, {
    description: 'Ensemble: gateway (Open Inference Protocol v2)',
    // Packaged by `npm run package`: the function stage modules bundled in, sharp for Linux beside it.
    bundle: g.bundle,
    handler: g.handler,
    runtime: g.runtime,
    architecture: g.architecture,
    memory: `${g.memoryMb} MB`,
    timeout: `${g.timeoutSeconds} seconds`,
    environment: {
      ...g.environment,
      ...nameEnvironment(components, g.nameEnv),
      ...versionEnvironment,
      ...secretEnvironment,
      [plan.jobs.queuePrefixEnv]: jobQueuePrefix(plan),
    },
    // Spills, run records and its stage functions, each with only the actions it uses (the plan's statements).
    permissions: permissions(components, g.permissions),
    url: { authorization: g.url.authorization },
    streaming: g.url.streaming,
  });
  return { fn, url: fn.url, apiKey };
}
