/**
 * 8-bit RGB images (HWC, 3 channels) and the few pixel operations the OCR
 * stages need, written to match OpenCV's semantics that PaddleOCR relies on.
 */
import type { Tensor } from '@ensemble/core';

export interface RgbImage {
  width: number;
  height: number;
  /** Row-major HWC, 3 bytes per pixel, R G B. */
  data: Uint8Array;
}

export function imageFromTensor(t: { shape: number[]; data: Uint8Array }, name: string): RgbImage {
  const [height, width, channels] = t.shape;
  if (channels !== 3) throw new Error(`input '${name}' has ${channels} channels, expected 3 (shape [h, w, 3])`);
  if (width < 1 || height < 1) throw new Error(`input '${name}' is an empty image (${width}x${height})`);
  return { width, height, data: t.data };
}

export function imageToTensor(img: RgbImage): Tensor {
  return { datatype: 'UINT8', shape: [img.height, img.width, 3], data: img.data };
}

/** Per-axis source index and weight tables for OpenCV's INTER_LINEAR (half-pixel centres, clamped edges). */
function linearTaps(srcLen: number, dstLen: number): { i0: Int32Array; i1: Int32Array; w1: Float32Array } {
  const i0 = new Int32Array(dstLen);
  const i1 = new Int32Array(dstLen);
  const w1 = new Float32Array(dstLen);
  const scale = srcLen / dstLen;
  for (let d = 0; d < dstLen; d++) {
    const f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    let frac = f - s;
    if (s < 0) { s = 0; frac = 0; }
    if (s >= srcLen - 1) { s = srcLen - 1; frac = 0; }
    i0[d] = s;
    i1[d] = Math.min(s + 1, srcLen - 1);
    w1[d] = frac;
  }
  return { i0, i1, w1 };
}

/**
 * Bilinear resize like cv2.resize(..., INTER_LINEAR). Returns float HWC
 * pixels (0..255, not rounded): the callers normalise them straight away.
 */
export function resizeBilinear(src: RgbImage, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height * 3);
  const xs = linearTaps(src.width, width);
  const ys = linearTaps(src.height, height);
  const s = src.data;
  const rowStride = src.width * 3;
  let o = 0;
  for (let y = 0; y < height; y++) {
    const r0 = ys.i0[y] * rowStride;
    const r1 = ys.i1[y] * rowStride;
    const wy = ys.w1[y];
    for (let x = 0; x < width; x++) {
      const c0 = xs.i0[x] * 3;
      const c1 = xs.i1[x] * 3;
      const wx = xs.w1[x];
      for (let c = 0; c < 3; c++) {
        const top = s[r0 + c0 + c] + (s[r0 + c1 + c] - s[r0 + c0 + c]) * wx;
        const bottom = s[r1 + c0 + c] + (s[r1 + c1 + c] - s[r1 + c0 + c]) * wx;
        out[o++] = top + (bottom - top) * wy;
      }
    }
  }
  return out;
}

export interface Normalisation {
  /** Applied first: x * scale. */
  scale: number;
  /** Per input channel in the order the model expects (see `bgr`). */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /** PaddleOCR reads images with cv2 (BGR), so its models expect channel 0 = blue. */
  bgr: boolean;
}

/**
 * HWC pixels (RGB order) -> CHW float tensor data of width `outWidth`, with
 * columns past `width` left at 0 (PaddleOCR pads after normalising).
 */
export function toChw(pixels: Float32Array | Uint8Array, width: number, height: number, norm: Normalisation, outWidth = width): Float32Array {
  const out = new Float32Array(3 * height * outWidth);
  const plane = height * outWidth;
  for (let c = 0; c < 3; c++) {
    const srcC = norm.bgr ? 2 - c : c;
    const k = norm.scale / norm.std[c];
    const b = -norm.mean[c] / norm.std[c];
    const base = c * plane;
    for (let y = 0; y < height; y++) {
      let i = y * width * 3 + srcC;
      let o = base + y * outWidth;
      for (let x = 0; x < width; x++, i += 3) out[o++] = pixels[i] * k + b;
    }
  }
  return out;
}

/** np.rot90: a quarter turn counter-clockwise. */
export function rotate90CounterClockwise(src: RgbImage): RgbImage {
  const { width: w, height: h, data: s } = src;
  const out = new Uint8Array(s.length);
  // new (row i, col j) = old (row j, col w-1-i); new size h' = w, w' = h
  for (let i = 0; i < w; i++) {
    const srcCol = (w - 1 - i) * 3;
    for (let j = 0; j < h; j++) {
      const si = j * w * 3 + srcCol;
      const oi = (i * h + j) * 3;
      out[oi] = s[si]; out[oi + 1] = s[si + 1]; out[oi + 2] = s[si + 2];
    }
  }
  return { width: h, height: w, data: out };
}

export function rotate180(src: RgbImage): RgbImage {
  const s = src.data;
  const out = new Uint8Array(s.length);
  const n = src.width * src.height;
  for (let p = 0; p < n; p++) {
    const si = p * 3;
    const oi = (n - 1 - p) * 3;
    out[oi] = s[si]; out[oi + 1] = s[si + 1]; out[oi + 2] = s[si + 2];
  }
  return { width: src.width, height: src.height, data: out };
}
