import type { DeploymentPlan } from '../packages/core/src/deploy/types.js';
import { pruneOnnxRuntime } from '../packages/core/src/deploy/prune.js';
import { links, nameEnvironment, type Components } from './wiring.js';

/**
 * One Lambda function per ONNX stage of the plan. onnxruntime-node is
 * installed for Linux at deploy time (`nodejs.install`; run the deploy with
 * ONNXRUNTIME_NODE_INSTALL=skip so its install script does not fetch CUDA
 * files), then pruned to the one platform the function runs on.
 */
export function stageFunctions(plan: DeploymentPlan, components: Components): Map<string, sst.aws.Function> {
  const functions = new Map<string, sst.aws.Function>();
  for (const s of plan.stages) {
    const fn = new sst.aws.Function(s.name, {
      description: `Ensemble: stage '${s.stage}' of pipeline '${s.pipeline}'`,
      handler: s.handler,
      runtime: s.runtime,
      architecture: s.architecture,
      memory: `${s.memoryMb} MB`,
      timeout: `${s.timeoutSeconds} seconds`,
      environment: { ...s.environment, ...nameEnvironment(components, s.nameEnv) },
      link: links(components, s.links),
      concurrency: s.concurrency,
      versioning: s.versioning,
      copyFiles: s.copyFiles,
      nodejs: { install: s.install },
      hook: {
        async postbuild(dir: string) {
          await pruneOnnxRuntime(dir, s.architecture);
        },
      },
    });
    functions.set(s.name, fn);
    components.set(s.name, fn);
  }
  return functions;
}
