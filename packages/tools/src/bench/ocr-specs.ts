/**
 * The OCR sample set the tests and the benchmark's job scenario render: text
 * images with known text (fonts, sizes, weights, colours, 1-4 lines, PNG and
 * JPEG), and how a result is scored against it.
 */
import { editDistance, type RenderOptions } from './render.js';

export const WORDS = ('invoice total amount paid order number customer account balance due date reference street city '
  + 'market report summary value price quantity shipping address phone email delivery the quick brown fox jumps '
  + 'over lazy dog').split(' ');
const FONTS = ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono'];
const INKS: [string, string][] = [['#000000', '#ffffff'], ['#1a237e', '#fff8e1'], ['#b71c1c', '#e0f7fa'], ['#333333', '#dddddd'], ['#ffffff', '#202020'], ['#ffffff', '#0d47a1']];

/** `count` deterministic image specs (seeded), cycling 1-4 lines and the three DejaVu families. */
export function ocrSampleSpecs(count: number, seed = 20240611): RenderOptions[] {
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s / 0x80000000; };
  const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)];
  return Array.from({ length: count }, (_, i) => {
    const lines = Array.from({ length: 1 + (i % 4) }, () => {
      const words = Array.from({ length: 2 + Math.floor(rnd() * 4) }, () => (rnd() < 0.25 ? String(Math.floor(rnd() * 100000)) : pick(WORDS)));
      if (rnd() < 0.5) words[0] = words[0][0].toUpperCase() + words[0].slice(1);
      return words.join(' ');
    });
    const [fg, bg] = pick(INKS);
    return {
      lines,
      font: FONTS[i % 3],
      size: 20 + Math.floor(rnd() * 29),
      weight: Math.floor(i / 3) % 2 ? 'bold' : 'normal',
      fg,
      bg,
      format: rnd() < 0.5 ? 'jpeg' : 'png',
    };
  });
}

export interface OcrLine { text: string; confidence: number; box: number[] }

/**
 * Edits against the expected text with spaces counted; a line the detector
 * split at a wide word gap is joined back with one space.
 */
export function scoreLines(spec: RenderOptions, lines: OcrLine[]): { edits: number; chars: number; expected: string; actual: string } {
  const expected = spec.lines.join(' ');
  const actual = lines.map((l) => l.text).join(' ').replace(/\s+/g, ' ').trim();
  return { edits: editDistance(expected, actual), chars: expected.length, expected, actual };
}
