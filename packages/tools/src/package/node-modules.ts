import { existsSync } from 'node:fs';
import { cp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { EnsembleError } from '@ensemble/core/errors.js';
import type { TargetPlatform } from './types.js';

interface PackageJson {
  name: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
}

/** Dependencies a package needs only to install itself (onnxruntime-node's download script), never at run time. */
const INSTALL_ONLY: Record<string, string[]> = {
  'onnxruntime-node': ['adm-zip', 'global-agent'],
};

/** Packages that cannot start without their native build for the target; a missing one is an error here, not at run time. */
const NATIVE_BUILDS: Record<string, (t: TargetPlatform) => string[]> = {
  sharp: (t) => [`@img/sharp-${t.os}-${nodeArch(t)}`, `@img/sharp-libvips-${t.os}-${nodeArch(t)}`],
};

/** Lambda runs Amazon Linux: glibc, so musl and WebAssembly builds are left out. */
const TARGET_LIBC = 'glibc';

/**
 * Copy installed packages, with the packages they depend on at run time,
 * from the project's node_modules into `<bundleDir>/node_modules`, keeping
 * only what runs on the target platform: packages whose package.json `os`,
 * `cpu` or `libc` rule them out are skipped (sharp's other platforms), and
 * onnxruntime-node keeps only `bin/napi-v6/linux/<arch>`. The result is flat
 * (every package at the top level), which Node's resolution finds.
 * Returns the package names copied.
 */
export async function copyPackages(names: string[], fromRoot: string, bundleDir: string, target: TargetPlatform): Promise<string[]> {
  const copied = new Map<string, string>();
  const queue: { name: string; from: string; optional: boolean; by?: string }[] = names.map((name) => ({ name, from: fromRoot, optional: false }));
  while (queue.length > 0) {
    const { name, from, optional, by } = queue.shift()!;
    if (copied.has(name)) continue;
    const dir = findPackage(name, from);
    if (!dir) {
      if (optional) continue;
      throw new EnsembleError(`${name}${by ? ` (needed by ${by})` : ''} is not installed under ${fromRoot}; run npm ci`);
    }
    const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
    if (!runsOn(pkg, target)) continue;
    await cp(dir, path.join(bundleDir, 'node_modules', name), {
      recursive: true, dereference: true, filter: (src) => keep(name, path.relative(dir, src), target),
    });
    copied.set(name, dir);
    const skip = new Set(INSTALL_ONLY[name] ?? []);
    for (const dep of Object.keys(pkg.dependencies ?? {})) if (!skip.has(dep)) queue.push({ name: dep, from: dir, optional: false, by: name });
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) queue.push({ name: dep, from: dir, optional: true, by: name });
  }
  for (const name of names) {
    for (const needed of NATIVE_BUILDS[name]?.(target) ?? []) {
      if (!copied.has(needed)) {
        throw new EnsembleError(`${name} needs ${needed} to run on Lambda (${target.os}/${nodeArch(target)}), and it is not installed here; `
          + `run \`npm install --no-save --os=${target.os} --cpu=${nodeArch(target)} --libc=${TARGET_LIBC} ${name}\` and package again`);
      }
    }
  }
  return [...copied.keys()];
}

/** `name`'s folder as Node would find it from `from`: the nearest node_modules/<name> going up. */
export function findPackage(name: string, from: string): string | undefined {
  for (let d = path.resolve(from); ; d = path.dirname(d)) {
    const candidate = path.join(d, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(d) === d) return undefined;
  }
}

function runsOn(pkg: PackageJson, t: TargetPlatform): boolean {
  return allows(pkg.os, t.os) && allows(pkg.cpu, nodeArch(t)) && allows(pkg.libc, TARGET_LIBC);
}

/** npm's rule: a list names what is allowed, or with `!` what is not. */
function allows(list: string[] | undefined, value: string): boolean {
  if (!list || list.length === 0) return true;
  if (list.includes(`!${value}`)) return false;
  const positive = list.filter((x) => !x.startsWith('!'));
  return positive.length === 0 || positive.includes(value);
}

/** Files worth shipping: no nested node_modules (the copy is flat), no source maps or type declarations, one native build of onnxruntime-node. */
function keep(pkg: string, rel: string, t: TargetPlatform): boolean {
  if (rel === '') return true;
  const parts = rel.split(path.sep);
  if (parts[0] === 'node_modules') return false;
  if (/\.(d\.ts|map)$/.test(rel)) return false;
  if (pkg === 'onnxruntime-node') {
    // bin/napi-v6/<os>/<arch>/...: only the target's; script/ and lib/ are its installer and TypeScript sources.
    if (parts[0] === 'script' || parts[0] === 'lib') return false;
    if (parts[0] === 'bin' && parts.length >= 3 && parts[2] !== t.os) return false;
    if (parts[0] === 'bin' && parts.length >= 4 && parts[3] !== nodeArch(t)) return false;
  }
  return true;
}

function nodeArch(t: TargetPlatform): 'x64' | 'arm64' {
  return t.architecture === 'arm64' ? 'arm64' : 'x64';
}
