/**
 * The OCR test set: rendered images with known text (fonts, sizes, weights,
 * colours, 1-4 lines, PNG and JPEG), and how a result is scored against it.
 * Shared by the stage test, the end-to-end HTTP test and the benchmark.
 */
import { expect } from 'vitest';
import { textLayout, type RenderOptions } from '../../packages/tools/src/bench/render.js';
import type { OcrLine } from '../../packages/tools/src/bench/ocr-specs.js';

export { WORDS, ocrSampleSpecs, scoreLines, type OcrLine } from '../../packages/tools/src/bench/ocr-specs.js';

/**
 * Reading order, from where the text was drawn: the band each box's centre
 * falls in never goes back up, boxes within a band go left to right, and
 * every drawn line is found.
 */
export function expectReadingOrder(spec: RenderOptions, lines: OcrLine[]): void {
  const layout = textLayout(spec);
  let band = 0;
  let left = -1;
  for (const l of lines) {
    expect(l.box.length).toBe(8);
    const cy = (l.box[1] + l.box[3] + l.box[5] + l.box[7]) / 4;
    const b = Math.floor((cy - layout.padding) / layout.pitch);
    expect(b, `band of ${JSON.stringify(l.text)} in ${JSON.stringify(spec.lines)}`).toBeGreaterThanOrEqual(band);
    if (b === band) expect(l.box[0], `x of ${JSON.stringify(l.text)}`).toBeGreaterThan(left);
    band = b;
    left = l.box[0];
  }
  expect(new Set(lines.map((l) => Math.floor(((l.box[1] + l.box[5]) / 2 - layout.padding) / layout.pitch))).size).toBe(spec.lines.length);
}
