/**
 * Greedy CTC decoding with PaddleOCR's character list (CTCLabelDecode):
 * index 0 is the blank, then the dictionary lines, then ' ' (use_space_char).
 */
import { readFileSync } from 'node:fs';

/** Characters by class index; index 0 is the CTC blank. */
export type Charset = readonly string[];

export function loadCharset(file: string, useSpaceChar = true): Charset {
  const lines = readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop(); // trailing newline
  return ['', ...lines, ...(useSpaceChar ? [' '] : [])];
}

export interface Decoded {
  text: string;
  /** Mean of the kept characters' probabilities; 0 when nothing was kept (as PaddleOCR). */
  confidence: number;
}

/** probs: [steps, classes] row-major softmax output. */
export function ctcGreedyDecode(probs: Float32Array, steps: number, charset: Charset): Decoded {
  const classes = charset.length;
  if (probs.length !== steps * classes) {
    throw new Error(`recogniser output has ${probs.length / Math.max(steps, 1)} classes per step, the dictionary ${classes}`);
  }
  let text = '';
  let sum = 0, kept = 0;
  let prev = -1;
  for (let t = 0; t < steps; t++) {
    const row = t * classes;
    let best = 0, bestP = probs[row];
    for (let c = 1; c < classes; c++) {
      const p = probs[row + c];
      if (p > bestP) { bestP = p; best = c; }
    }
    if (best !== 0 && best !== prev) {
      text += charset[best];
      sum += bestP;
      kept++;
    }
    prev = best;
  }
  return { text, confidence: kept === 0 ? 0 : sum / kept };
}

/**
 * The same greedy decoding from the recogniser's greedy head (models/ocr/build.ts):
 * best: [steps, 2] row-major, per time step the best class (a whole number
 * stored as float) and its probability.
 */
export function ctcGreedyDecodeBest(best: Float32Array, steps: number, charset: Charset): Decoded {
  if (best.length !== steps * 2) throw new Error(`recogniser gave ${best.length} values for ${steps} steps, expected 2 per step`);
  let text = '';
  let sum = 0, kept = 0;
  let prev = -1;
  for (let t = 0; t < steps; t++) {
    const c = best[2 * t];
    if (!(c >= 0 && c < charset.length && Number.isInteger(c))) throw new Error(`recogniser gave class ${c} at step ${t}; the dictionary has ${charset.length} (blank included)`);
    if (c !== 0 && c !== prev) {
      text += charset[c];
      sum += best[2 * t + 1];
      kept++;
    }
    prev = c;
  }
  return { text, confidence: kept === 0 ? 0 : sum / kept };
}
