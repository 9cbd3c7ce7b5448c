import type { DeploymentPlan } from '../packages/tools/src/deploy/types.js';
import { nameEnvironment, permissions, type Components } from './wiring.js';

/**
 * One Lambda function per ONNX stage of the plan. The code is the folder
 * `npm run package` built (`bundle`): the handler bundled by esbuild with the
 * settings in packages/tools/src/package/settings.ts, and onnxruntime-node with
 * only its linux binaries, well under Lambda's 250 MB. SST uploads it as is.
 */
export function stageFunctions(plan: DeploymentPlan, components: Components): Map<string, sst.aws.Function> {
  const functions = new Map<string, sst.aws.Function>();
  for (const s of plan.stages) {
    const fn = new sst.aws.Function(s.name, {
      description: `Ensemble: stage '${s.stage}' of pipeline '${s.pipeline}'`,
      bundle: s.bundle,
      handler: s.handler,
      runtime: s.runtime,
      architecture: s.architecture,
      memory: `${s.memoryMb} MB`,
      timeout: `${s.timeoutSeconds} seconds`,
      environment: { ...s.environment, ...nameEnvironment(components, s.nameEnv) },
      // Its own weights and the spills, nothing else (the plan's statements).
      permissions: permissions(components, s.permissions),
      concurrency: s.concurrency,
      versioning: s.versioning,
    });
    functions.set(s.name, fn);
    components.set(s.name, fn);
  }
  return functions;
}
