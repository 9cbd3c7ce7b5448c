import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from './args.js';

/** `demo`, `models/demo`, or `models/demo/pipeline.yaml` -> the manifest path. */
export function manifestPath(arg: string, modelsDir = 'models'): string {
  const candidates = [arg, join(arg, 'pipeline.yaml'), join(modelsDir, arg, 'pipeline.yaml')];
  for (const c of candidates) {
    if (existsSync(c) && statSync(c).isFile()) return resolve(c);
  }
  throw new UsageError(`no pipeline '${arg}': looked for ${candidates.join(', ')}`);
}
