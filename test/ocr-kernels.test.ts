/**
 * The OCR stages' pixel kernels against their plain definitions: the fast
 * forms (fused, separable, unrolled) must give the same bits, so the pipeline
 * reads exactly what it read before they were made fast.
 */
import { describe, expect, it } from 'vitest';
import { resizeBilinear, resizeToChw, toChw, type Normalisation, type RgbImage } from '../models/ocr/lib/image.js';
import { perspectiveTransform, warpPerspective } from '../models/ocr/lib/warp.js';
import { binaryMap } from '../models/ocr/lib/db-postprocess.js';

function random(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

function image(width: number, height: number, rnd: () => number): RgbImage {
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => Math.floor(rnd() * 256)) };
}

const same = (a: ArrayBufferView, b: ArrayBufferView) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('resizeToChw', () => {
  const IMAGENET: Normalisation = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: true };
  const HALF_RGB: Normalisation = { scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], bgr: false };

  it('gives the bits of resizeBilinear then toChw: shrinking, enlarging, the same size, one row or column, padded', () => {
    const rnd = random(11);
    // [source w, h] -> [w, h, padded width]: a page to a multiple of 32, line crops to 48 px high, edge cases.
    const cases: [number, number, number, number, number][] = [
      [629, 134, 640, 128, 640], [1300, 700, 960, 512, 960], [37, 40, 45, 48, 320], [300, 30, 192, 48, 192],
      [64, 64, 64, 64, 64], [1, 1, 8, 48, 48], [50, 1, 30, 48, 64], [1, 50, 48, 48, 48], [7, 5, 3, 2, 3],
    ];
    for (const [sw, sh, w, h, padded] of cases) {
      const src = image(sw, sh, rnd);
      for (const norm of [IMAGENET, HALF_RGB]) {
        const want = toChw(resizeBilinear(src, w, h), w, h, norm, padded);
        const got = resizeToChw(src, w, h, norm, padded);
        expect(got.length).toBe(3 * h * padded);
        expect(same(got, want), `${sw}x${sh} -> ${w}x${h} (padded ${padded}), bgr ${norm.bgr}`).toBe(true);
      }
    }
  });
});

/** cv2.warpPerspective(INTER_CUBIC, BORDER_REPLICATE) written out per pixel, as the definition. */
function warpReference(src: RgbImage, h: number[], width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  const weights = (t: number) => {
    const A = -0.75;
    const w0 = ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A;
    const w1 = ((A + 2) * t - (A + 3)) * t * t + 1;
    const w2 = ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1;
    return [w0, w1, w2, 1 - w0 - w1 - w2];
  };
  const at = (x: number, y: number, c: number) =>
    src.data[(Math.min(Math.max(y, 0), src.height - 1) * src.width + Math.min(Math.max(x, 0), src.width - 1)) * 3 + c];
  let o = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const z = h[6] * x + h[7] * y + h[8];
      const fx = (h[0] * x + h[1] * y + h[2]) / z, fy = (h[3] * x + h[4] * y + h[5]) / z;
      const ix = Math.floor(fx), iy = Math.floor(fy);
      const wx = weights(fx - ix), wy = weights(fy - iy);
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let r = 0; r < 4; r++) {
          let row = 0;
          for (let k = 0; k < 4; k++) row += wx[k] * at(ix - 1 + k, iy - 1 + r, c);
          acc += wy[r] * row;
        }
        out[o++] = acc <= 0 ? 0 : acc >= 255 ? 255 : Math.round(acc);
      }
    }
  }
  return out;
}

describe('warpPerspective', () => {
  it('gives the pixels of the per-pixel bicubic definition for tilted boxes, inside and across the border', () => {
    const rnd = random(5);
    const src = image(160, 60, rnd);
    for (let t = 0; t < 40; t++) {
      const x0 = rnd() * 140 - 20, y0 = rnd() * 50 - 10, bw = 10 + rnd() * 120, bh = 6 + rnd() * 30, a = (rnd() - 0.5) * 0.4;
      const quad = [[0, 0], [bw, 0], [bw, bh], [0, bh]].map(([u, v]) => ({
        x: x0 + u * Math.cos(a) - v * Math.sin(a) + (rnd() - 0.5) * 3,
        y: y0 + u * Math.sin(a) + v * Math.cos(a) + (rnd() - 0.5) * 3,
      }));
      const w = Math.max(1, Math.trunc(bw)), h = Math.max(1, Math.trunc(bh));
      const m = perspectiveTransform([{ x: 0, y: 0 }, { x: w, y: 0 }, { x: w, y: h }, { x: 0, y: h }], quad);
      const got = warpPerspective(src, m, w, h);
      expect(got.width * got.height).toBe(w * h);
      expect(same(got.data, warpReference(src, m, w, h)), `case ${t}`).toBe(true);
    }
  });
});

describe('binaryMap', () => {
  it('thresholds, and with dilation sets a pixel when it or its left, upper or upper-left neighbour is over', () => {
    const rnd = random(3);
    for (const [w, h] of [[64, 32], [1, 1], [1, 9], [9, 1], [33, 17]]) {
      const data = Float32Array.from({ length: w * h }, () => (rnd() < 0.15 ? 0.3 + rnd() * 0.7 : rnd() * 0.3));
      data[0] = 0.3; // exactly at the threshold: not over it
      const over = (x: number, y: number) => x >= 0 && y >= 0 && data[y * w + x] > 0.3;
      const plain = binaryMap(data, w, h, 0.3, false);
      const dilated = binaryMap(data, w, h, 0.3, true);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          expect(plain[y * w + x]).toBe(over(x, y) ? 1 : 0);
          expect(dilated[y * w + x]).toBe(over(x, y) || over(x - 1, y) || over(x, y - 1) || over(x - 1, y - 1) ? 1 : 0);
        }
      }
    }
  });
});
