import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifest } from '../../../core/src/manifest/load.js';
import { buildIfNeeded } from '../../src/pipelines/build.js';
import { Executor } from '../../../core/src/executor/executor.js';
import { InProcessTransport } from '../../../core/src/transport/in-process.js';
import { localWeights } from '../../src/tune/capture.js';
import { createSequentialRunner } from '../../src/bench/sequential.js';
import { predictPipelinedMs } from '../../src/bench/scenarios/pipelined.js';
import { setCer } from '../../src/bench/scenarios/ocr.js';
import { normalizeText, type OcrSample } from '../../src/bench/ocr-images.js';

const DEMO = join(fileURLToPath(new URL('../../../../models/demo/pipeline.yaml', import.meta.url)));

describe('pipelined prediction', () => {
  it('is the flow-shop time of k equal chunks', () => {
    // One chunk: nothing overlaps.
    expect(predictPipelinedMs([100, 60], 1)).toBe(160);
    // Four chunks: each stage's first chunk, then the slower stage for the other three.
    expect(predictPipelinedMs([100, 60], 4)).toBe(40 + 75);
    // Many chunks approach the slowest stage.
    expect(predictPipelinedMs([100, 60], 1000)).toBeCloseTo(100, 0);
  });
});

describe('OCR character error rate', () => {
  const sample = (lines: string[]): OcrSample => ({ name: 'x', png: Buffer.alloc(0), lines });

  it('counts edits over all expected characters, whitespace collapsed', () => {
    expect(normalizeText(['  Total  due', 'now '])).toBe('Total due now');
    const samples = [sample(['abcd']), sample(['efgh', 'ij'])];
    // One substitution in eleven expected characters (the break between two lines counts as one space).
    expect(setCer(samples, [['abcd'], ['efgh ix']])).toBeCloseTo(1 / 11);
    expect(setCer(samples, [['abcd'], ['efgh', 'ij']])).toBe(0);
    // A page with nothing read costs all its characters.
    expect(setCer(samples, [['abcd'], []])).toBeCloseTo(7 / 11);
  });
});

describe('sequential runner', () => {
  it('gives the same outputs as the executor on the demo pipeline', async () => {
    const m = await loadManifest(DEMO);
    await buildIfNeeded(m);
    const x = { datatype: 'FP32' as const, shape: [3, 4], data: Float32Array.from([0.5, -1, 2, 0.25, 1, 1, 1, 1, -0.5, 0, 0.75, -2]) };
    const seq = await createSequentialRunner(m, { threads: 1 });
    const transport = new InProcessTransport(localWeights(m));
    const ex = await Executor.create(m, transport);
    try {
      const a = await seq.run({ x });
      const b = (await ex.run({ x })).outputs;
      expect(a.y.shape).toEqual([3, 3]);
      expect(Array.from(a.y.data as Float32Array)).toEqual(Array.from(b.y.data as Float32Array));
    } finally {
      await seq.close();
      await ex.close();
      await transport.close();
    }
  });
});
