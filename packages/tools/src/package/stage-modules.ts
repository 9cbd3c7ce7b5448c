import path from 'node:path';
import type { Plugin } from 'esbuild';

/** The virtual module that registers the bundled function stage modules; the gateway's entry imports it first. */
export const STAGE_MODULES_ID = 'ensemble:stage-modules';

/**
 * Source of the module that makes function stages loadable inside a bundle:
 * a map from each stage module's path (relative to the function's root, as
 * the manifest resolves it there) to a static `import()` esbuild can follow,
 * installed with setStageModuleLoader before the gateway loads any pipeline.
 */
export function stageModulesSource(root: string, modules: string[]): string {
  const abs = (p: string) => JSON.stringify(path.resolve(root, p));
  const entries = [...new Set(modules)].sort().map((m) => `  ${JSON.stringify(m)}: () => import(${abs(m)}),`);
  return [
    `import path from 'node:path';`,
    `import { fileURLToPath } from 'node:url';`,
    `import { setStageModuleLoader } from ${abs('packages/core/src/runtime/function.ts')};`,
    `const modules = {`,
    ...entries,
    `};`,
    // The handler sits in <root>/functions/, and Lambda sets LAMBDA_TASK_ROOT to <root>.
    `const root = process.env.LAMBDA_TASK_ROOT || fileURLToPath(new URL('@ensemble/core/index.ts', import.meta.url));`,
    `setStageModuleLoader(async (file) => {`,
    `  const rel = path.relative(root, file).split(path.sep).join('/');`,
    `  const load = modules[rel];`,
    `  if (!load) throw new Error(\`stage module \${rel} is not in this bundle (it has \${Object.keys(modules).join(', ') || 'none'}); package the functions again\`);`,
    `  return load();`,
    `});`,
    '',
  ].join('\n');
}

/** An esbuild plugin serving STAGE_MODULES_ID from `source`. */
export function stageModulesPlugin(root: string, source: string): Plugin {
  return {
    name: 'ensemble-stage-modules',
    setup(build) {
      build.onResolve({ filter: /^ensemble:stage-modules$/ }, (args) => ({ path: args.path, namespace: 'ensemble' }));
      build.onLoad({ filter: /.*/, namespace: 'ensemble' }, () => ({ contents: source, resolveDir: root, loader: 'ts' }));
    },
  };
}

/** The gateway's entry: stage modules registered first (ES modules run in import order), then the real handler. */
export function gatewayEntrySource(handlerFile: string): string {
  return `import '${STAGE_MODULES_ID}';\nexport * from ${JSON.stringify(handlerFile)};\n`;
}
