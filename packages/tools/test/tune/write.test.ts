import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifest } from '../../../core/src/manifest/load.js';
import { applyUpdates, writeProposal } from '../../src/tune/write.js';

const SHA = 'ab'.repeat(32);
const MANIFEST = `# A pipeline for the tune writer.
name: tuned
inputs:
  - { name: x, datatype: FP32, shape: [-1, 4] }
outputs:
  - { name: z, datatype: FP32, shape: [-1, 4] }
defaults:
  batch: { max_delay_ms: 2 }
stages:
  - name: first
    kind: onnx
    weights: { key: t/first.onnx, sha256: ${SHA}, source: first.onnx }
    inputs: { x: x }
    outputs: { y: y }
    batch:
      # why the batch is small
      max_size: 4   # keep this comment
    scale: { memory_mb: 512 }

  - name: second
    kind: onnx
    weights: { key: t/second.onnx, sha256: ${SHA}, source: second.onnx }
    inputs: { y: y }
    outputs: { z: z }
`;

describe('tune --write', () => {
  const dirs: string[] = [];
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }); });

  async function manifestFile(text = MANIFEST): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'ensemble-tune-'));
    dirs.push(dir);
    const file = join(dir, 'pipeline.yaml');
    await writeFile(file, text);
    return file;
  }

  it('sets batch and scale fields, adding what is missing, and the manifest still loads', async () => {
    const file = await manifestFile();
    const m = await writeProposal(file, [
      { stage: 'first', maxSize: 16, maxDelayMs: 1, instances: 2, threads: 1 },
      { stage: 'second', maxSize: 8, maxDelayMs: 0, instances: 1, threads: 2 },
    ]);
    const first = m.stages.find((s) => s.name === 'first')!;
    const second = m.stages.find((s) => s.name === 'second')!;
    expect(first.batch).toMatchObject({ maxSize: 16, maxDelayMs: 1 });
    expect(first.scale).toMatchObject({ instances: 2, threads: 1, memoryMb: 512 });
    expect(second.batch).toMatchObject({ maxSize: 8, maxDelayMs: 0 });
    expect(second.scale).toMatchObject({ instances: 1, threads: 2 });
    // Loading it from disk again gives the same.
    expect((await loadManifest(file)).stages.map((s) => [s.batch.maxSize, s.scale.instances])).toEqual([[16, 2], [8, 1]]);
  });

  it('keeps comments and layout: only the values change', async () => {
    const file = await manifestFile();
    await writeProposal(file, [{ stage: 'first', maxSize: 32, maxDelayMs: 0, instances: 1, threads: 2 }]);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# A pipeline for the tune writer.');
    expect(text).toContain('      # why the batch is small\n      max_size: 32   # keep this comment\n      max_delay_ms: 0\n');
    expect(text).toContain('scale: { memory_mb: 512, instances: 1, threads: 2 }');
    expect(text).toContain('  - { name: x, datatype: FP32, shape: [-1, 4] }');
    // The untouched stage is byte for byte the same.
    expect(text.slice(text.indexOf('  - name: second'))).toBe(MANIFEST.slice(MANIFEST.indexOf('  - name: second')));
  });

  it('sets only the fields given (a function stage gets only its delay)', () => {
    const out = applyUpdates(MANIFEST, 'p.yaml', [{ stage: 'second', maxDelayMs: 0 }]);
    expect(out).toBe(`${MANIFEST.trimEnd()}\n    batch: { max_delay_ms: 0 }\n`);
  });

  it('puts the original back when the result would not load', async () => {
    const file = await manifestFile();
    await expect(writeProposal(file, [{ stage: 'first', maxSize: 4, maxDelayMs: 0, instances: 0, threads: 1 }])).rejects.toThrow(/did not load.*instances/s);
    expect(await readFile(file, 'utf8')).toBe(MANIFEST);
  });

  it('names an unknown stage', () => {
    expect(() => applyUpdates(MANIFEST, 'p.yaml', [{ stage: 'third', maxSize: 2 }])).toThrow("no stage 'third'");
  });
});
