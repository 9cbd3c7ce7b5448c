import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyPackages, findPackage } from '../../src/package/node-modules.js';
import { prebundlePackage } from '../../src/package/prebundle.js';
import { bundleSettings, esbuildTarget } from '../../src/package/settings.js';
import { gatewayEntrySource, stageModulesSource, STAGE_MODULES_ID } from '../../src/package/stage-modules.js';
import { EnsembleError } from '../../../core/src/errors.js';

const REPO = path.resolve(import.meta.dirname, '../../../..');
let dir: string;

beforeAll(async () => { dir = await mkdtemp(path.join(tmpdir(), 'ensemble-package-unit-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

async function files(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String);
}

describe('copyPackages', () => {
  it('copies onnxruntime-node with what it needs at run time and only the target\'s native build', async () => {
    const out = path.join(dir, 'ort-arm64');
    const copied = await copyPackages(['onnxruntime-node'], REPO, out, { os: 'linux', architecture: 'arm64' });
    expect(copied.sort()).toEqual(['onnxruntime-common', 'onnxruntime-node']);
    const bin = path.join(out, 'node_modules/onnxruntime-node/bin/napi-v6');
    expect(readdirSync(bin)).toEqual(['linux']);
    expect(readdirSync(path.join(bin, 'linux'))).toEqual(['arm64']);
    // Its installer (script/, adm-zip, global-agent) and TypeScript sources stay behind.
    expect(existsSync(path.join(out, 'node_modules/onnxruntime-node/script'))).toBe(false);
    expect(existsSync(path.join(out, 'node_modules/adm-zip'))).toBe(false);
    expect((await files(path.join(out, 'node_modules'))).filter((f) => f.endsWith('.d.ts') || f.endsWith('.map'))).toEqual([]);
  });

  it('copies sharp with the Linux x64 glibc builds its package.json os/cpu/libc allow, and nothing for other platforms', async () => {
    const out = path.join(dir, 'sharp-x64');
    const copied = await copyPackages(['sharp'], REPO, out, { os: 'linux', architecture: 'x86_64' });
    expect(copied).toEqual(expect.arrayContaining(['sharp', '@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64', 'detect-libc', 'semver']));
    expect(copied.filter((p) => /musl|darwin|win32|wasm/.test(p))).toEqual([]);
  });

  it('refuses to package sharp for a platform whose build is not installed, saying how to get it', async () => {
    const err = await copyPackages(['sharp'], REPO, path.join(dir, 'sharp-arm64'), { os: 'linux', architecture: 'arm64' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnsembleError);
    expect((err as Error).message).toContain('sharp needs @img/sharp-linux-arm64 to run on Lambda (linux/arm64)');
    expect((err as Error).message).toContain('npm install --no-save --os=linux --cpu=arm64 --libc=glibc sharp');
  });

  it('names a missing package', async () => {
    await expect(copyPackages(['no-such-package-here'], REPO, path.join(dir, 'none'), { os: 'linux', architecture: 'x86_64' }))
      .rejects.toThrow('no-such-package-here is not installed');
    expect(findPackage('no-such-package-here', REPO)).toBeUndefined();
  });
});

describe('prebundlePackage', () => {
  it('folds sharp\'s ES module entry and its pure JavaScript packages into one file that still loads libvips from its own package', async () => {
    const out = path.join(dir, 'sharp-prebundled');
    await copyPackages(['sharp'], REPO, out, { os: 'linux', architecture: 'x86_64' });
    const modules = path.join(out, 'node_modules');
    const done = await prebundlePackage(modules, 'sharp', 'node20');
    expect(done?.entry).toBe('./dist/index.bundle.mjs');
    expect(done!.files).toBeGreaterThan(50);
    const pkg = JSON.parse(readFileSync(path.join(modules, 'sharp/package.json'), 'utf8'));
    expect(pkg.exports['.'].import.default).toBe('./dist/index.bundle.mjs');
    // CommonJS callers keep the entry they had.
    expect(pkg.exports['.'].require.default).toBe('./dist/index.cjs');
    // What was folded in is not needed beside it any more; the native build still is, and is found from sharp's folder.
    await rm(path.join(modules, 'semver'), { recursive: true });
    await rm(path.join(modules, 'detect-libc'), { recursive: true });
    await writeFile(path.join(out, 'probe.mjs'), [
      "import sharp from 'sharp';",
      'const png = await sharp({ create: { width: 3, height: 2, channels: 3, background: { r: 200, g: 10, b: 30 } } }).png().toBuffer();',
      'const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });',
      'console.log(JSON.stringify({ width: info.width, height: info.height, first: [...data.subarray(0, 3)], vips: sharp.versions.vips }));',
    ].join('\n'));
    const probed = JSON.parse(execFileSync(process.execPath, ['probe.mjs'], { cwd: out, encoding: 'utf8' }));
    expect(probed).toMatchObject({ width: 3, height: 2, first: [200, 10, 30] });
    expect(probed.vips).toMatch(/^\d+\.\d+/);
  });

  it('leaves a CommonJS entry alone: a bundle would hide the named exports Node reads from its source', async () => {
    const out = path.join(dir, 'ort-prebundled');
    await copyPackages(['onnxruntime-node'], REPO, out, { os: 'linux', architecture: 'x86_64' });
    const pkgFile = path.join(out, 'node_modules/onnxruntime-node/package.json');
    const before = readFileSync(pkgFile, 'utf8');
    expect(await prebundlePackage(path.join(out, 'node_modules'), 'onnxruntime-node', 'node20')).toBeUndefined();
    expect(readFileSync(pkgFile, 'utf8')).toBe(before);
    expect(readdirSync(path.join(out, 'node_modules/onnxruntime-node/dist')).filter((f) => f.includes('.bundle.'))).toEqual([]);
  });

  it('leaves a package whose exports has no entry for import alone', async () => {
    const modules = path.join(dir, 'require-only', 'node_modules');
    await mkdir(path.join(modules, 'only-cjs'), { recursive: true });
    const pkg = JSON.stringify({ name: 'only-cjs', exports: { '.': { require: './index.cjs' } } });
    await writeFile(path.join(modules, 'only-cjs/package.json'), pkg);
    await writeFile(path.join(modules, 'only-cjs/index.cjs'), 'module.exports = 1;\n');
    expect(await prebundlePackage(modules, 'only-cjs', 'node20')).toBeUndefined();
    expect(readFileSync(path.join(modules, 'only-cjs/package.json'), 'utf8')).toBe(pkg);
  });
});

describe('bundle settings', () => {
  it('target the function\'s Node.js runtime, keep class names and leave native packages outside', () => {
    expect(esbuildTarget('nodejs22.x')).toBe('node22');
    const s = bundleSettings('nodejs22.x', ['onnxruntime-node']);
    expect(s).toMatchObject({ format: 'esm', platform: 'node', target: 'node22', keepNames: true, bundle: true });
    expect(s.external).toEqual(['onnxruntime-node', 'onnxruntime-node/*']);
  });

  it('registers the function stage modules before the gateway handler loads', () => {
    const src = stageModulesSource('/app', ['models/ocr/stages/decode.ts', 'models/demo/stages/average.ts']);
    expect(src).toContain('"models/demo/stages/average.ts": () => import("/app/models/demo/stages/average.ts")');
    expect(src).toContain('"models/ocr/stages/decode.ts": () => import("/app/models/ocr/stages/decode.ts")');
    expect(src).toContain('setStageModuleLoader(');
    const entry = gatewayEntrySource('/app/functions/gateway.ts');
    expect(entry.indexOf(STAGE_MODULES_ID)).toBeLessThan(entry.indexOf('functions/gateway.ts'));
  });
});
