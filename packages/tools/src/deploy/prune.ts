import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { LambdaArchitecture } from './types.js';
import { EnsembleError } from '@ensemble/core/errors.js';

/** Where onnxruntime-node keeps its native builds, one folder per `<os>/<arch>`. */
const ORT_BINARIES = ['node_modules', 'onnxruntime-node', 'bin', 'napi-v6'];

/**
 * onnxruntime-node ships every platform's binaries (~290 MB), over Lambda's
 * 250 MB unzipped limit. After SST has installed it into a function's bundle,
 * keep only linux/<arch>. Returns the folders removed, relative to the bundle.
 * A bundle without onnxruntime-node is left alone; one without the build it
 * needs is an error now rather than a function that cannot start.
 */
export async function pruneOnnxRuntime(bundleDir: string, architecture: LambdaArchitecture): Promise<string[]> {
  const keepArch = architecture === 'arm64' ? 'arm64' : 'x64';
  const base = path.join(bundleDir, ...ORT_BINARIES);
  const removed: string[] = [];
  const systems = await list(base);
  if (systems.length === 0) return removed;
  if (!(await list(path.join(base, 'linux'))).includes(keepArch)) {
    throw new EnsembleError(`${base} has no linux/${keepArch} build of onnxruntime-node; the function could not load it`);
  }
  for (const os of systems) {
    for (const arch of await list(path.join(base, os))) {
      if (os === 'linux' && arch === keepArch) continue;
      const dir = path.join(base, os, arch);
      await rm(dir, { recursive: true, force: true });
      removed.push(path.relative(bundleDir, dir).split(path.sep).join('/'));
    }
  }
  return removed;
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
