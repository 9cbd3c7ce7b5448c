/**
 * What `npm ci` would warn about, checked here because .npmrc has npm report
 * errors only (its one warning on Node 20 is a dev dependency's engines
 * field): every installed package accepts the Node versions the project
 * supports, but for the one known dev-only exception, and every package with
 * an install script is named in package.json's allowScripts.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

interface LockedPackage { version?: string; dev?: boolean; optional?: boolean; engines?: { node?: string } | string[]; hasInstallScript?: boolean; link?: boolean }

async function json<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(join(ROOT, file), 'utf8')) as T;
}

/** The installed packages, by name (several versions of one name each count). */
async function locked(): Promise<{ name: string; pkg: LockedPackage }[]> {
  const lock = await json<{ packages: Record<string, LockedPackage> }>('package-lock.json');
  return Object.entries(lock.packages)
    .filter(([path, pkg]) => path.includes('node_modules/') && !pkg.link)
    .map(([path, pkg]) => ({ name: path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length), pkg }));
}

/**
 * Dev dependencies that declare a newer Node than 20, and why that is fine:
 * sst depends on its durable workflow SDK, which declares node >=22, and
 * loads it only in its `sst/aws/workflow` component, which nothing here
 * imports. Its sst version pins it, and no version of it accepts Node 20.
 */
const NEWER_NODE_DEV_ONLY = ['@aws/durable-execution-sdk-js'];

/**
 * Runtime packages that declare a newer Node than 20 but are never loaded:
 * cookie 2 comes with fastify's light-my-request, which fastify requires only
 * inside `inject()` (fastify.js), a testing helper the local SQS emulator's
 * server never calls (the jobs tests run it on Node 20).
 */
const NEWER_NODE_NEVER_LOADED = ['cookie'];

describe('install policy', () => {
  it('every package accepts the lowest Node 20 the project supports and Node 22 (from 22.12, as vite asks), but for the known dev-only exceptions', async () => {
    const project = await json<{ engines: { node: string } }>('package.json');
    const lowest = semver.minVersion(project.engines.node)!.version;
    const refused: { name: string; dev: boolean; node: string; on: string }[] = [];
    for (const { name, pkg } of await locked()) {
      // npm skips an optional package (a platform binary) whose engines refuse the running Node, silently.
      const node = !pkg.optional && pkg.engines && !Array.isArray(pkg.engines) ? pkg.engines.node : undefined;
      if (!node) continue;
      for (const on of [lowest, '22.12.0']) {
        if (!semver.satisfies(on, node, { includePrerelease: true })) refused.push({ name, dev: pkg.dev === true, node, on });
      }
    }
    expect(refused.filter((r) => !r.dev && !NEWER_NODE_NEVER_LOADED.includes(r.name))).toEqual([]);
    expect([...new Set(refused.map((r) => r.name))].sort()).toEqual([...NEWER_NODE_DEV_ONLY, ...NEWER_NODE_NEVER_LOADED].sort());
  });

  it('names every package with an install script in allowScripts, so none runs unreviewed', async () => {
    const { allowScripts } = await json<{ allowScripts: Record<string, boolean> }>('package.json');
    const withScripts = [...new Set((await locked()).filter((p) => p.pkg.hasInstallScript).map((p) => p.name))].sort();
    expect(withScripts.length).toBeGreaterThan(0);
    expect(withScripts.filter((name) => !(name in allowScripts))).toEqual([]);
    // onnxruntime-node's would download CUDA libraries: it stays denied.
    expect(allowScripts['onnxruntime-node']).toBe(false);
  });

  it('has npm report errors only, through a setting npm knows', async () => {
    const npmrc = await readFile(join(ROOT, '.npmrc'), 'utf8');
    const settings = npmrc.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    expect(settings).toEqual(['loglevel=error']);
  });
});
