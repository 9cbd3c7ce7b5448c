/**
 * The layout's rules, read from the sources: the engine (packages/core) needs
 * nothing of the tooling, its layers import downwards only, the executor
 * knows transports through their interface, no source imports test code, and
 * stage modules reach the engine through '@ensemble/core' alone.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/pipelines.js';

function files(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(REPO, dir))) {
    const rel = path.join(dir, entry);
    if (entry === 'node_modules' || entry === 'build') continue;
    if (statSync(path.join(REPO, rel)).isDirectory()) out.push(...files(rel));
    else if (/\.(ts|mts|mjs)$/.test(entry)) out.push(rel);
  }
  return out;
}

/** Every module specifier a file imports (static, dynamic, re-exports). */
function imports(file: string): string[] {
  const text = readFileSync(path.join(REPO, file), 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]);
}

/** The repo-relative file a relative specifier points at (undefined for packages). */
function target(file: string, spec: string): string | undefined {
  if (spec.startsWith('@ensemble/core/')) return `packages/core/src/${spec.slice('@ensemble/core/'.length)}`;
  if (spec.startsWith('@ensemble/tools/')) return `packages/tools/src/${spec.slice('@ensemble/tools/'.length)}`;
  if (!spec.startsWith('.')) return undefined;
  return path.normalize(path.join(path.dirname(file), spec));
}

const core = files('packages/core/src');
const TOOLING = /^(s3rver|dynalite|esbuild|sharp|vitest|autocannon|@aws-sdk\/lib-storage|@gutenye\/ocr-node|onnx-proto|protobufjs|@hono\/node-server|fauxqs)(\/|$)/;

describe('the layout', () => {
  it('keeps the engine free of tooling: no tools package, emulator, bundler or test import in packages/core/src', () => {
    const bad = core.flatMap((f) => imports(f).filter((s) => {
      const t = target(f, s);
      return TOOLING.test(s) || s.startsWith('@ensemble/tools') || (t !== undefined && !t.startsWith('packages/core/src/'));
    }).map((s) => `${f}: ${s}`));
    expect(bad).toEqual([]);
  });

  it('imports downwards only inside the engine', () => {
    // Each folder may import the folders listed for it (and itself); the lower layers come first.
    const allowed: Record<string, string[]> = {
      'errors': [],
      deadline: ['errors'],
      tensor: ['errors'],
      manifest: ['errors', 'tensor', 'storage'],
      storage: ['errors', 'tensor'],
      // What the engine reports as it works (statistics, metrics, traces): told by the layers above, it imports none of them.
      observability: ['errors', 'storage'],
      monitors: ['errors', 'tensor', 'manifest', 'storage'],
      runtime: ['errors', 'deadline', 'tensor', 'manifest'],
      // Which function stages run beside an ONNX stage's model (for the transports that run them there), and running them.
      placement: ['errors', 'tensor', 'manifest', 'runtime'],
      transport: ['errors', 'deadline', 'tensor', 'manifest', 'runtime', 'placement', 'storage', 'observability'],
      batching: ['errors', 'deadline', 'tensor', 'runtime', 'observability'],
      executor: ['errors', 'deadline', 'tensor', 'manifest', 'runtime', 'batching', 'transport', 'storage', 'observability'],
      pipelines: ['errors', 'manifest', 'executor', 'transport', 'storage', 'runtime', 'observability', 'monitors'],
      jobs: ['errors', 'tensor', 'manifest', 'executor', 'pipelines', 'storage', 'observability'],
      http: ['errors', 'deadline', 'tensor', 'manifest', 'executor', 'pipelines', 'transport', 'storage', 'jobs', 'observability'],
      lambda: ['errors', 'deadline', 'tensor', 'manifest', 'runtime', 'placement', 'transport', 'storage', 'executor', 'pipelines', 'http', 'jobs', 'observability'],
      'index': ['errors', 'tensor', 'runtime', 'observability', 'storage'],
    };
    const bad: string[] = [];
    for (const f of core) {
      const from = f.split('/')[3].replace(/\.(ts|js)$/, '');
      for (const s of imports(f)) {
        const t = target(f, s);
        if (!t?.startsWith('packages/core/src/')) continue;
        const to = t.split('/')[3].replace(/\.(ts|js)$/, '');
        if (to !== from && !(allowed[from] ?? []).includes(to)) bad.push(`${f} imports ${t}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('has the executor reach stages through the transport interface only', () => {
    const bad = files('packages/core/src/executor').flatMap((f) => imports(f)
      .filter((s) => target(f, s)?.startsWith('packages/core/src/transport/') && !s.endsWith('/types.js'))
      .map((s) => `${f}: ${s}`));
    expect(bad).toEqual([]);
    for (const f of files('packages/core/src/executor')) expect(readFileSync(path.join(REPO, f), 'utf8')).not.toMatch(/kind === '(lambda|local)'/);
  });

  it('has no cycle between the tooling folders (the deployment plan and the Lambda host included)', () => {
    const tools = files('packages/tools/src');
    const edges = new Map<string, Set<string>>();
    for (const f of tools) {
      const from = f.split('/')[3];
      for (const s of imports(f)) {
        const t = target(f, s);
        if (!t?.startsWith('packages/tools/src/')) continue;
        const to = t.split('/')[3];
        if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
      }
    }
    const cycles: string[] = [];
    const walk = (node: string, path: string[]) => {
      if (path.includes(node)) {
        cycles.push([...path.slice(path.indexOf(node)), node].join(' -> '));
        return;
      }
      for (const next of edges.get(node) ?? []) walk(next, [...path, node]);
    };
    for (const node of edges.keys()) walk(node, []);
    expect(cycles).toEqual([]);
  });

  it('has no source file import test code', () => {
    const sources = [...core, ...files('packages/tools/src'), ...files('functions'), ...files('models')];
    const bad = sources.flatMap((f) => imports(f).filter((s) => {
      const t = target(f, s);
      return t !== undefined && (t.startsWith('test/') || /^packages\/[^/]+\/test\//.test(t));
    }).map((s) => `${f}: ${s}`));
    expect(bad).toEqual([]);
  });

  it("has stage modules import the engine through '@ensemble/core' only", () => {
    const stageCode = files('models').filter((f) => !f.endsWith('/build.ts'));
    const bad = stageCode.flatMap((f) => imports(f)
      .filter((s) => s.startsWith('@ensemble/') ? s !== '@ensemble/core' : target(f, s)?.startsWith('packages/'))
      .map((s) => `${f}: ${s}`));
    expect(bad).toEqual([]);
  });

  it('has the console sit on the engine alone: its routes import core, never the tooling', () => {
    const bad = files('packages/console/src').flatMap((f) => imports(f)
      .filter((s) => s.startsWith('@ensemble/tools') || TOOLING.test(s) || (target(f, s) !== undefined && !target(f, s)!.startsWith('packages/console/') && !target(f, s)!.startsWith('packages/core/src/')))
      .map((s) => `${f}: ${s}`));
    expect(files('packages/console/src').length).toBeGreaterThan(0);
    expect(bad).toEqual([]);
  });
});
