/**
 * Files a stage reads at init (the recogniser's dictionary). Paths in options
 * are relative to the manifest's folder; a path through node_modules is also
 * looked up the way Node finds packages (each parent folder's node_modules),
 * because a deployed bundle need not keep the repository's layout.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export function resolveAsset(spec: string, dir: string): string {
  const direct = isAbsolute(spec) ? spec : resolve(dir, spec);
  if (existsSync(direct)) return direct;
  const marker = 'node_modules/';
  const at = spec.replace(/\\/g, '/').lastIndexOf(marker);
  if (at >= 0) {
    const inPackage = spec.slice(at + marker.length);
    for (const start of [dir, process.cwd()]) {
      for (let d = resolve(start); ; d = dirname(d)) {
        const candidate = join(d, 'node_modules', inPackage);
        if (existsSync(candidate)) return candidate;
        if (dirname(d) === d) break;
      }
    }
  }
  throw new Error(`file not found: ${spec} (looked in ${dir}${at >= 0 ? ' and every node_modules above it' : ''})`);
}
