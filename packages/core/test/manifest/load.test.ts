import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findManifests, loadManifest } from '../../src/manifest/load.js';
import { expectManifestError, removePipelines, STAGE_MODULE, writePipeline } from './helpers.js';

afterAll(removePipelines);

const DOCS = resolve(import.meta.dirname, '../../../../docs/manifest.md');

describe('loadManifest', () => {
  it('loads the complete example of docs/manifest.md', async () => {
    const doc = await readFile(DOCS, 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)![1]
      // The docs abbreviate the hashes.
      .replace(/sha256: ([0-9a-f]+)\.\.\./g, (_, head: string) => `sha256: ${head.padEnd(64, '0')}`);
    const { file } = await writePipeline(yaml, { 'stages/average.ts': STAGE_MODULE });
    const m = await loadManifest(file);
    expect(m.name).toBe('demo');
    expect(m.order).toEqual(['branch_a', 'branch_b', 'average']);
    expect(m.levels).toEqual({ x: 0, a: 0, b: 0, y: 0 });
    expect(m.stages.map((s) => s.batch.maxDelayMs)).toEqual([2, 2, 2]);
    expect(m.stages[0].scale).toEqual({ instances: 1, threads: 1, memoryMb: 1024, reservedConcurrency: 4, provisionedConcurrency: 0 });
    expect(m.stages[0].batch.padAxis).toBe(2);
  });

  it('names the file when it cannot be read', async () => {
    const file = join(tmpdir(), 'ensemble-no-such-dir', 'pipeline.yaml');
    await expectManifestError(() => loadManifest(file), file, 'pipeline', 'cannot read the manifest');
  });
});

describe('findManifests', () => {
  it('finds every */pipeline.yaml, sorted', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ensemble-models-'));
    try {
      for (const name of ['ocr', 'demo', 'empty']) await mkdir(join(root, name));
      await writeFile(join(root, 'ocr', 'pipeline.yaml'), 'name: ocr\n');
      await writeFile(join(root, 'demo', 'pipeline.yaml'), 'name: demo\n');
      // Not a pipeline folder: a manifest at the top, and a file named like a folder.
      await writeFile(join(root, 'pipeline.yaml'), 'name: top\n');
      await writeFile(join(root, 'notes'), '');
      expect(await findManifests(root)).toEqual([join(root, 'demo', 'pipeline.yaml'), join(root, 'ocr', 'pipeline.yaml')]);
      expect(await findManifests(join(root, 'missing'))).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
