import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { EnsembleError } from '@ensemble/core/errors.js';

/**
 * One installed package's JavaScript as one file: what a cold start pays per
 * module (resolving it, reading it, compiling it) it pays once. sharp's ES
 * module entry loads some 70 files (semver alone is 50), all of them during
 * the init of a function that decodes images, before its first request.
 */
export interface Prebundled {
  name: string;
  /** The entry the package now names, relative to its folder. */
  entry: string;
  /** Files folded into it. */
  files: number;
}

interface PackageJson {
  type?: string;
  main?: string;
  exports?: unknown;
}

/**
 * Bundles the entry an ES module `import` of `name` resolves to (the
 * `exports` "." import condition, else `main`), when that entry is an ES
 * module, with the pure JavaScript packages it requires, into one file
 * beside it, and points the package's entry at it; returns undefined (and
 * changes nothing) for a CommonJS entry or none. Beside it, so the paths the
 * package resolves from its own location (its native build, its
 * package.json) stay the same. Native code stays out: `.node` files, and
 * any package in `nodeModules` that ships one or a shared library (sharp's
 * platform builds), load from their folders as before. The package's other
 * files stay, for anything that requires them by path.
 */
export async function prebundlePackage(nodeModules: string, name: string, target: string): Promise<Prebundled | undefined> {
  const dir = path.join(nodeModules, name);
  const pkgFile = path.join(dir, 'package.json');
  const pkg = JSON.parse(await readFile(pkgFile, 'utf8')) as PackageJson;
  const found = importEntry(pkg);
  // No entry for import (a package for require only) is left alone too.
  if (!found) return undefined;
  const { entry, set } = found;
  const from = path.join(dir, entry);
  if (!existsSync(from)) throw new EnsembleError(`${name}: its entry ${entry} is not in the package`);
  const ext = path.extname(entry);
  // A CommonJS entry is left alone: Node finds an imported CommonJS module's named exports by reading its
  // source (and the files it re-exports), which a bundle of it would hide (onnxruntime-node's come from
  // onnxruntime-common that way).
  if (!(ext === '.mjs' || (ext === '.js' && pkg.type === 'module'))) return undefined;
  const out = entry.slice(0, -ext.length) + '.bundle' + ext;
  const result = await build({
    entryPoints: [from],
    outfile: path.join(dir, out),
    bundle: true,
    platform: 'node',
    target,
    format: 'esm',
    // The bundle still requires the CommonJS packages it folded in: give it `require`.
    banner: { js: "import { createRequire as __prebundleRequire } from 'node:module'; const require = __prebundleRequire(import.meta.url);" },
    external: ['*.node', ...(await nativePackages(nodeModules))],
    metafile: true,
    logLevel: 'silent',
    legalComments: 'inline',
  });
  set(out.startsWith('.') ? out : `./${out}`);
  await writeFile(pkgFile, JSON.stringify(pkg, null, 2) + '\n');
  return { name, entry: out, files: Object.keys(result.metafile.inputs).length };
}

/** Where `import name` lands, and how to point that field at another file; undefined when exports has no import entry. */
function importEntry(pkg: PackageJson): { entry: string; set: (to: string) => void } | undefined {
  if (pkg.exports === undefined) return { entry: pkg.main ?? 'index.js', set: (to) => { pkg.main = to; } };
  // `exports` is the entry itself, a map of subpaths, or the conditions of "."; under a condition, a path or conditions again.
  let holder = pkg as unknown as Record<string, unknown>;
  let key = 'exports';
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (isMap(holder[key]) && '.' in (holder[key] as object)) { holder = holder[key] as Record<string, unknown>; key = '.'; }
  while (isMap(holder[key])) {
    const conditions = holder[key] as Record<string, unknown>;
    const next = ['import', 'node', 'default'].find((c) => c in conditions);
    if (!next) break;
    holder = conditions;
    key = next;
  }
  const entry = holder[key];
  return typeof entry === 'string' ? { entry, set: (to) => { holder[key] = to; } } : undefined;
}

/** Packages (scoped ones as @scope/name) that ship a native build: a `.node` file or a shared library. */
async function nativePackages(nodeModules: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(nodeModules)) {
    if (entry.startsWith('.')) continue;
    const scoped = entry.startsWith('@') ? (await readdir(path.join(nodeModules, entry))).map((n) => `${entry}/${n}`) : [entry];
    for (const name of scoped) if (await hasNativeFile(path.join(nodeModules, name))) names.push(name);
  }
  return names;
}

async function hasNativeFile(dir: string): Promise<boolean> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && await hasNativeFile(path.join(dir, e.name))) return true;
    } else if (/\.node$|\.so(\.\d+)*$|\.dylib$|\.dll$/.test(e.name)) {
      return true;
    }
  }
  return false;
}
