import sharp from 'sharp';
import type { Tensor } from '@ensemble/core/tensor/types.js';
import { renderTextImage } from '../render.js';

const WORDS = ['invoice', 'total', 'amount', 'due', 'March', '2024', 'order', 'number', 'Ensemble', 'stage', 'batch', 'latency', 'quick', 'brown', 'fox', 'jumps'];

/** Text for line i: deterministic, a few words and digits. */
export function lineText(i: number): string {
  return `${WORDS[i % WORDS.length]} ${WORDS[(i * 7 + 3) % WORDS.length]} ${1000 + i * 37}`;
}

/**
 * `count` rendered text lines as the recogniser's input: 48 px high, BGR,
 * (x / 255 - 0.5) / 0.5, zero-padded on the right to `width` (what the OCR
 * pipeline's rec-pre stage hands the recogniser).
 */
export async function lineCropTensors(count: number, width: number): Promise<Tensor> {
  const H = 48;
  const data = new Float32Array(count * 3 * H * width);
  for (let i = 0; i < count; i++) {
    const png = await renderTextImage({ lines: [lineText(i)], size: 28, padding: 6, lineHeight: 1.3 });
    const { data: px, info } = await sharp(png).resize({ height: H }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const w = Math.min(info.width, width);
    const base = i * 3 * H * width;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < w; x++) {
        const p = (y * info.width + x) * info.channels;
        for (let c = 0; c < 3; c++) data[base + c * H * width + y * width + x] = (px[p + (2 - c)] / 255 - 0.5) / 0.5;
      }
    }
  }
  return { datatype: 'FP32', shape: [count, 3, H, width], data };
}

/** `count` rendered text lines as the crop stage cuts them: RGB pixels, [height, width, 3] UINT8, as rendered. */
export async function lineCropPixels(count: number): Promise<Tensor[]> {
  const out: Tensor[] = [];
  for (let i = 0; i < count; i++) {
    const png = await renderTextImage({ lines: [lineText(i)], size: 28, padding: 6, lineHeight: 1.3 });
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    out.push({ datatype: 'UINT8', shape: [info.height, info.width, 3], data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  }
  return out;
}
