/**
 * Padding along a stage's pad_axis must not change what a stage computes for
 * an item: the real PP-OCRv4 recogniser reads every line the same whether it
 * runs alone or in one batch padded to the widest line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { loadManifest } from '../../src/manifest/load.js';
import type { FunctionStage, Manifest, OnnxStage } from '../../src/manifest/types.js';
import type { Item } from '../../src/tensor/types.js';
import type { StageRuntime } from '../../src/runtime/types.js';
import { createOnnxRuntime } from '../../src/runtime/onnx.js';
import { createFunctionRuntime } from '../../src/runtime/function.js';
import { buildIfNeeded } from '@ensemble/tools/pipelines/build.js';
import { characterErrorRate, renderTextImage } from '@ensemble/tools/bench/render.js';

const LINES = ['Hi', 'order number 4711', 'the quick brown fox jumps over the lazy dog'];
let manifest: Manifest;
const rt: Record<string, StageRuntime> = {};

async function one(name: string, item: Item): Promise<Item> {
  const r = await rt[name].run([item]);
  const o = r.outcomes[0];
  if (!o.ok) throw new Error(o.error);
  return o.items[0];
}

beforeAll(async () => {
  manifest = await loadManifest(resolve(__dirname, '../../../../models/ocr/pipeline.yaml'));
  await buildIfNeeded(manifest); // the recogniser with its greedy head is a built artifact
  for (const name of ['decode', 'rec-pre', 'ctc-decode']) {
    rt[name] = await createFunctionRuntime(manifest.stages.find((s) => s.name === name) as FunctionStage, 'ocr', manifest.dir);
  }
  const rec = manifest.stages.find((s) => s.name === 'recognize') as OnnxStage;
  expect(rec.batch.padAxis).toBe(2);
  rt.recognize = await createOnnxRuntime({ stage: rec, modelPath: rec.weights.source! });
});

afterAll(async () => {
  for (const r of Object.values(rt)) await r.close();
});

describe('ONNX stage padding', () => {
  it('a padded batch of lines of different widths reads each line as it reads alone', async () => {
    const inputs: Item[] = [];
    for (const line of LINES) {
      const png = await renderTextImage({ lines: [line], size: 32, padding: 6 });
      const { rgb } = await one('decode', { image: { datatype: 'BYTES', shape: [], data: [png] } });
      const { rec_input } = await one('rec-pre', { line_upright: rgb });
      inputs.push({ x: rec_input });
    }
    const widths = inputs.map((i) => i.x.shape[2]);
    expect(new Set(widths).size).toBeGreaterThan(1); // the batch really needs padding

    const text = async (prob: Item[string]) => {
      const out = await one('ctc-decode', { rec_best: prob });
      return new TextDecoder().decode((out.line_text.data as Uint8Array[])[0]);
    };
    const alone = await Promise.all(inputs.map(async (i) => text((await one('recognize', i))['rec_best'])));
    const batch = await rt.recognize.run(inputs);
    const together = await Promise.all(batch.outcomes.map((o) => {
      if (!o.ok) throw new Error(o.error);
      // Every item comes back with the padded batch's time steps.
      expect(o.items[0]['rec_best'].shape[0]).toBe(Math.max(...widths) / 8);
      return text(o.items[0]['rec_best']);
    }));
    // Whole rendered images are looser crops than detection makes; close reading is enough here.
    alone.forEach((t, i) => expect(characterErrorRate(LINES[i], t), t).toBeLessThan(0.15));
    expect(together).toEqual(alone);
  });
});
