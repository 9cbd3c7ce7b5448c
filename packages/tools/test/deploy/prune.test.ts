import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pruneOnnxRuntime } from '../../src/deploy/prune.js';
import { tempDir } from '../../../core/test/storage/local.js';

const temps: { cleanup(): Promise<void> }[] = [];
afterAll(async () => { for (const t of temps) await t.cleanup(); });

const PLATFORMS = ['darwin/arm64', 'linux/arm64', 'linux/x64', 'win32/arm64', 'win32/x64'];

/** A function bundle as SST leaves it after `npm install --os=linux`: onnxruntime-node with every platform's build. */
async function bundle(platforms = PLATFORMS): Promise<string> {
  const t = await tempDir('prune');
  temps.push(t);
  for (const p of platforms) {
    const d = join(t.dir, 'node_modules/onnxruntime-node/bin/napi-v6', p);
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'onnxruntime_binding.node'), 'x');
  }
  await writeFile(join(t.dir, 'index.mjs'), 'export const handler = () => 1;');
  return t.dir;
}

const napi = (dir: string, p: string) => join(dir, 'node_modules/onnxruntime-node/bin/napi-v6', p);

describe('pruneOnnxRuntime', () => {
  it('keeps only linux/x64 for x86_64 functions', async () => {
    const dir = await bundle();
    const removed = await pruneOnnxRuntime(dir, 'x86_64');
    expect(removed).toEqual(['darwin/arm64', 'linux/arm64', 'win32/arm64', 'win32/x64'].map((p) => `node_modules/onnxruntime-node/bin/napi-v6/${p}`));
    expect(PLATFORMS.filter((p) => existsSync(napi(dir, p)))).toEqual(['linux/x64']);
    expect(existsSync(join(dir, 'index.mjs'))).toBe(true);
  });

  it('keeps only linux/arm64 for arm64 functions', async () => {
    const dir = await bundle();
    await pruneOnnxRuntime(dir, 'arm64');
    expect(PLATFORMS.filter((p) => existsSync(napi(dir, p)))).toEqual(['linux/arm64']);
  });

  it('leaves a bundle without onnxruntime-node alone', async () => {
    const dir = await bundle([]);
    expect(await pruneOnnxRuntime(dir, 'x86_64')).toEqual([]);
    expect(existsSync(join(dir, 'index.mjs'))).toBe(true);
  });

  it('fails when the build the function needs is missing, removing nothing', async () => {
    const dir = await bundle(['darwin/arm64', 'linux/arm64']);
    await expect(pruneOnnxRuntime(dir, 'x86_64')).rejects.toThrow('has no linux/x64 build of onnxruntime-node');
    expect(existsSync(napi(dir, 'linux/arm64'))).toBe(true);
  });
});
