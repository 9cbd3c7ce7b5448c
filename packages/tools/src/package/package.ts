import { existsSync } from 'node:fs';
import { copyFile, link, lstat, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build, type Metafile } from 'esbuild';
import type { DeploymentPlan, FunctionPlan } from '../deploy/types.js';
import { pruneOnnxRuntime } from '../deploy/prune.js';
import { EnsembleError } from '@ensemble/core/errors.js';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import { stagesFile, stagesFilePath } from '@ensemble/core/lambda/stage-file.js';
import { copyPackages } from './node-modules.js';
import { prebundlePackage } from './prebundle.js';
import { LAMBDA_UNZIPPED_LIMIT_BYTES, bundleSettings, esbuildTarget } from './settings.js';
import { gatewayEntrySource, stageModulesPlugin, stageModulesSource } from './stage-modules.js';
import type { PackageOptions, PackagedFunction, TargetPlatform } from './types.js';

/** Native packages that must never end up inside a bundle (they load platform binaries from their own folder). */
const NATIVE = ['onnxruntime-node', 'sharp'];

/**
 * Build every function of the plan into `<root>/<function.bundle>/`: the
 * handler bundled by esbuild to `functions/<name>.mjs` (with the function
 * stage modules, for the gateway), the plan's copyFiles at their relative
 * paths, and the `install` packages with only the target platform's native
 * files. Functions sharing a handler share one build and their node_modules
 * are hard links to the first copy. Fails if a function would be over
 * Lambda's 250 MB unzipped limit.
 */
export async function packageFunctions(plan: DeploymentPlan, opts: PackageOptions): Promise<PackagedFunction[]> {
  const root = path.resolve(opts.root);
  const log = opts.log ?? (() => undefined);
  const all: FunctionPlan[] = [...plan.stages, plan.gateway, ...plan.jobs.consumers];
  const unknown = (opts.only ?? []).filter((n) => !all.some((f) => f.name === n));
  if (unknown.length) throw new EnsembleError(`no function ${unknown.join(', ')} in the plan (it has ${all.map((f) => f.name).join(', ')})`);
  const selected = opts.only?.length ? all.filter((f) => opts.only!.includes(f.name)) : all;

  const builds = new Map<string, { dir: string; files: string[]; sources: string[] }>();
  const installs = new Map<string, string>();
  const out: PackagedFunction[] = [];
  for (const fn of selected) {
    const t0 = performance.now();
    const dir = opts.outDir ? path.resolve(opts.outDir, fn.name) : path.resolve(root, fn.bundle);
    if (!opts.outDir && !isInside(root, dir)) throw new EnsembleError(`function '${fn.name}': bundle folder ${dir} is outside ${root}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });

    const { source, handlerFile } = handlerPaths(root, fn);
    const target = path.join(dir, handlerFile);
    const modules = 'stageModules' in fn ? (fn as { stageModules: string[] }).stageModules : [];
    const buildKey = JSON.stringify([fn.handler, fn.runtime, fn.install, modules]);
    let built = builds.get(buildKey);
    if (built) {
      // The handler and the chunks it loads, at the same paths.
      for (const f of built.files) {
        await mkdir(path.dirname(path.join(dir, f)), { recursive: true });
        await copyFile(path.join(built.dir, f), path.join(dir, f));
      }
    } else {
      const b = await bundleHandler(fn, root, source, target, modules);
      built = { dir, files: b.files.map((f) => path.relative(dir, f)), sources: b.sources };
      builds.set(buildKey, built);
    }

    for (const c of fn.copyFiles) {
      const from = path.resolve(root, c.from);
      const to = path.resolve(dir, c.to ?? c.from);
      if (!isInside(dir, to)) throw new EnsembleError(`function '${fn.name}': copyFiles target ${c.to ?? c.from} is outside the bundle`);
      await mkdir(path.dirname(to), { recursive: true });
      await copyTree(from, to, false);
    }

    const stagePlan = plan.stages.find((st) => st === fn);
    if (stagePlan) await writeStagesFile(root, dir, stagePlan.manifest);

    const platform: TargetPlatform = { os: 'linux', architecture: fn.architecture };
    const installKey = JSON.stringify([fn.install, platform]);
    const installed = installs.get(installKey);
    if (installed) {
      await copyTree(path.join(installed, 'node_modules'), path.join(dir, 'node_modules'), true);
    } else if (fn.install.length) {
      await copyPackages(fn.install, root, dir, platform);
      // Each installed package's JavaScript as one file: a cold start resolves, reads and compiles every module it loads.
      for (const name of fn.install) await prebundlePackage(path.join(dir, 'node_modules'), name, esbuildTarget(fn.runtime));
      installs.set(installKey, dir);
    }
    // A check more than a prune: the copy above already left the other platforms out.
    await pruneOnnxRuntime(dir, fn.architecture);

    const { bytes, files } = await treeSize(dir);
    if (bytes > LAMBDA_UNZIPPED_LIMIT_BYTES) {
      throw new EnsembleError(`function '${fn.name}' is ${mb(bytes)} MB unzipped, over Lambda's ${mb(LAMBDA_UNZIPPED_LIMIT_BYTES)} MB limit (${dir})`);
    }
    log(`${fn.name}: ${mb(bytes)} MB, ${files} files in ${dir} (${Math.round(performance.now() - t0)} ms)`);
    out.push({ name: fn.name, dir, handlerFile, bytes, files, sources: built.sources });
  }
  return out;
}

/**
 * The stage function's stages file beside its bundled manifest, made from
 * that copy: its init then reads JSON rather than parsing and checking YAML.
 */
async function writeStagesFile(root: string, dir: string, manifest: string): Promise<void> {
  const bundled = path.resolve(dir, manifest);
  if (!existsSync(bundled)) throw new EnsembleError(`the stage function's manifest ${manifest} is not among its copyFiles`);
  const text = await readFile(bundled, 'utf8');
  // Loaded from the project, where the paths it checks resolve; the text is the same as the bundled copy's.
  const source = path.resolve(root, manifest);
  if ((await readFile(source, 'utf8')) !== text) throw new EnsembleError(`${manifest} changed while packaging; package again`);
  await writeFile(stagesFilePath(bundled), JSON.stringify(stagesFile(await loadManifest(source), text)));
}

/** `functions/stage.handler` -> the source `functions/stage.ts` and the bundle's `functions/stage.mjs`. */
function handlerPaths(root: string, fn: FunctionPlan): { source: string; handlerFile: string } {
  const base = fn.handler.slice(0, fn.handler.lastIndexOf('.'));
  const source = ['.ts', '.mts', '.js', '.mjs'].map((ext) => path.join(root, base + ext)).find((f) => existsSync(f));
  if (!source) throw new EnsembleError(`function '${fn.name}': no source for handler ${fn.handler} under ${root}`);
  return { source, handlerFile: `${base}.mjs` };
}

/**
 * Bundles the handler; returns the files written (absolute) and the source
 * files inside the bundle, relative to `root`. Every handler is split:
 * what it imports dynamically (function stage modules, the OpenTelemetry
 * SDK, the manifest's YAML parser, credential providers other than the
 * environment's)
 * goes to chunks beside it that are read only if used, so a cold start does
 * not compile them.
 */
async function bundleHandler(fn: FunctionPlan, root: string, source: string, outfile: string, stageModules: string[]): Promise<{ files: string[]; sources: string[] }> {
  const settings = bundleSettings(fn.runtime, fn.install);
  const split = {
    outdir: path.dirname(outfile),
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    outExtension: { '.js': '.mjs' },
  } as const;
  // With function stages in the bundle each stage module is a chunk too, imported when its runtime is made:
  // a stage function that co-locates pre-processing loads sharp during init, beside the weights' download.
  const result = stageModules.length
    ? await build({
      ...settings,
      ...split,
      stdin: { contents: gatewayEntrySource(source), resolveDir: root, sourcefile: `${path.basename(source)} (with stage modules)`, loader: 'ts' },
      entryNames: path.basename(outfile, '.mjs'),
      plugins: [stageModulesPlugin(root, stageModulesSource(root, stageModules))],
    })
    : await build({
      ...settings,
      ...split,
      entryPoints: [{ in: source, out: path.basename(outfile, '.mjs') }],
    });
  const leaked = nativeInputs(result.metafile!).filter((p) => !fn.install.includes(p));
  if (leaked.length) {
    throw new EnsembleError(`function '${fn.name}': its bundle pulls in ${leaked.join(', ')}, which only the ${leaked.includes('sharp') ? 'gateway' : 'stage functions'} may load; check what imports it`);
  }
  const cwd = process.cwd();
  return {
    files: Object.keys(result.metafile!.outputs).map((p) => path.resolve(cwd, p)),
    sources: Object.keys(result.metafile!.inputs).map((p) => path.relative(root, path.resolve(cwd, p))).sort(),
  };
}

function nativeInputs(meta: Metafile): string[] {
  const found = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    for (const p of NATIVE) if (input.includes(`node_modules/${p}/`)) found.add(p);
  }
  return [...found];
}

/** Copy a file or folder; with `hardLink`, link files instead (same content, no extra disk). */
async function copyTree(from: string, to: string, hardLink: boolean): Promise<void> {
  const st = await lstat(from);
  if (st.isDirectory()) {
    await mkdir(to, { recursive: true });
    for (const entry of await readdir(from)) await copyTree(path.join(from, entry), path.join(to, entry), hardLink);
    return;
  }
  if (hardLink) {
    try {
      await link(from, to);
      return;
    } catch { /* another device or no permission: copy */ }
  }
  await copyFile(from, to);
}

/** Bytes and files under `dir`, as the unzipped function counts them. */
export async function treeSize(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = await treeSize(p);
      bytes += sub.bytes;
      files += sub.files;
    } else {
      bytes += (await lstat(p)).size;
      files++;
    }
  }
  return { bytes, files };
}

function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function mb(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
