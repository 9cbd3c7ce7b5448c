import type { BuildOptions } from 'esbuild';
import type { LambdaRuntime } from '../deploy/types.js';

/** Lambda refuses a function whose code (all layers included) unzips to more than this. */
export const LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

/** esbuild's target for a Lambda runtime. */
export function esbuildTarget(runtime: LambdaRuntime): string {
  return runtime.replace(/^nodejs(\d+)\.x$/, 'node$1');
}

/**
 * How every function's handler is bundled, in one place: `npm run package`
 * uses it, and `sst deploy` uploads what that produced (stacks/ pass the
 * folder as `bundle`), so what the tests load is what Lambda runs.
 *
 * ESM like the sources; `require` defined for the CommonJS packages bundled
 * into ESM output (the AWS SDK's dependencies); names kept, because errors are
 * told apart by class name (`StageError`) across the Invoke boundary.
 *
 * A package's ES module build before its CommonJS `main`: the AWS SDK's
 * CommonJS builds are one file per client that esbuild cannot tree-shake, so
 * every S3 command and its schema was in every function, and compiling and
 * running that is most of a stage function's start.
 */
export function bundleSettings(runtime: LambdaRuntime, external: string[]): BuildOptions {
  return {
    bundle: true,
    platform: 'node',
    mainFields: ['module', 'main'],
    format: 'esm',
    target: esbuildTarget(runtime),
    minify: true,
    keepNames: true,
    sourcemap: false,
    legalComments: 'none',
    // A package and its subpaths (`onnxruntime-node/...`) stay outside the bundle.
    external: external.flatMap((p) => [p, `${p}/*`]),
    banner: { js: "import { createRequire as __ensembleRequire } from 'node:module'; const require = __ensembleRequire(import.meta.url);" },
    logLevel: 'warning',
    metafile: true,
  };
}
