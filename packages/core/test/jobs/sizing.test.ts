import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/manifest/load.js';
import { firstStage, inFlightFor, quietInFlightFor } from '../../src/jobs/sizing.js';

const model = (name: string) => fileURLToPath(new URL(`../../../../models/${name}/pipeline.yaml`, import.meta.url));

describe('inFlightFor', () => {
  it('sizes OCR by every model stage, not by its first stage (decode, one image at a time)', async () => {
    const m = await loadManifest(model('ocr'));
    expect(firstStage(m).name).toBe('decode');
    // detect 1 instance x 1, classify 1 x 2, recognize 2 x 1, the function stages one: twice that.
    expect(inFlightFor(m)).toBe(2 * (1 + 2 + 2 + 1));
  });

  it('counts parallel branches each, and keeps two full batches of the first stage per instance where that is more', async () => {
    const demo = await loadManifest(model('demo'));
    // branch_a and branch_b, 32 each, and the averaging function stage.
    expect(inFlightFor(demo)).toBe(2 * (32 + 32 + 1));
    const ocr = await loadManifest(model('ocr'));
    const wide = { ...ocr, stages: ocr.stages.map((s) => (s.name === 'decode' ? { ...s, batch: { ...s.batch, maxSize: 16 } } : s)) };
    expect(inFlightFor(wide)).toBe(16 * 2);
  });
});

describe('quietInFlightFor', () => {
  it('is a sixth of the full count, at least one', async () => {
    const ocr = await loadManifest(model('ocr'));
    expect(quietInFlightFor(ocr)).toBe(2);
    const demo = await loadManifest(model('demo'));
    expect(quietInFlightFor(demo)).toBe(Math.ceil(inFlightFor(demo) / 6));
    const one = { ...ocr, stages: ocr.stages.map((s) => ({ ...s, batch: { ...s.batch, maxSize: 1 }, scale: { ...s.scale, instances: 1 } })) };
    expect(quietInFlightFor(one)).toBeGreaterThanOrEqual(1);
  });
});
