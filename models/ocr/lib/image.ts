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
 * pixels (0..255, not rounded). The stages use resizeToChw, which gives these
 * values normalised in one pass; this and toChw are its readable definition
 * (test/ocr-kernels.test.ts holds the two to the same bits).
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

/**
 * One source row (HWC bytes from `base`) interpolated horizontally to `width` columns, into `into` (HWC doubles).
 * A module-level function rather than a closure made per call: V8 inlines a call to one function, and a new closure
 * each image sent the optimised caller back to the interpreter ("wrong call target") on the next image.
 */
function interpolateRow(s: Uint8Array, base: number, cx0: Int32Array, cx1: Int32Array, wxs: Float32Array, width: number, into: Float64Array): void {
  for (let x = 0, o = 0; x < width; x++, o += 3) {
    const a = base + cx0[x], b = base + cx1[x];
    const wx = wxs[x];
    into[o] = s[a] + (s[b] - s[a]) * wx;
    into[o + 1] = s[a + 1] + (s[b + 1] - s[a + 1]) * wx;
    into[o + 2] = s[a + 2] + (s[b + 2] - s[a + 2]) * wx;
  }
}

/**
 * resizeBilinear then toChw, to the same float32 values, in one pass without
 * the intermediate HWC float image. Separable: each source row a pair of
 * output rows reads is interpolated horizontally once (in doubles, the same
 * values resizeBilinear computes for it) and kept while the next output row
 * still reads it; each output value is then one vertical step and the
 * normalisation. Columns past `width` are left at 0.
 */
export function resizeToChw(src: RgbImage, width: number, height: number, norm: Normalisation, outWidth = width): Float32Array {
  const out = new Float32Array(3 * height * outWidth);
  const plane = height * outWidth;
  const xs = linearTaps(src.width, width);
  const ys = linearTaps(src.height, height);
  const s = src.data;
  const rowStride = src.width * 3;
  const cx0 = new Int32Array(width), cx1 = new Int32Array(width);
  for (let x = 0; x < width; x++) { cx0[x] = xs.i0[x] * 3; cx1[x] = xs.i1[x] * 3; }
  const wxs = xs.w1;
  // Two horizontally interpolated source rows (HWC doubles), swapped as the output rows move down.
  let rowA = new Float64Array(width * 3), rowB = new Float64Array(width * 3);
  let haveA = -1, haveB = -1;
  // Output plane p reads source channel ch[p] and is scaled and offset as output channel p.
  const ch0 = norm.bgr ? 2 : 0, ch2 = norm.bgr ? 0 : 2;
  const k0 = norm.scale / norm.std[0], b0 = -norm.mean[0] / norm.std[0];
  const k1 = norm.scale / norm.std[1], b1 = -norm.mean[1] / norm.std[1];
  const k2 = norm.scale / norm.std[2], b2 = -norm.mean[2] / norm.std[2];
  const fround = Math.fround;
  for (let y = 0; y < height; y++) {
    const r0 = ys.i0[y], r1 = ys.i1[y];
    if (haveA !== r0) {
      if (haveB === r0) { const t = rowA; rowA = rowB; rowB = t; haveA = r0; haveB = -1; }
      else { interpolateRow(s, r0 * rowStride, cx0, cx1, wxs, width, rowA); haveA = r0; }
    }
    // A row that reads one source row twice (the clamped bottom edge) reads it from rowA. A copy here ran once per
    // image, last, so V8's optimised code had no feedback for it and dropped back to the interpreter every time.
    if (r1 !== r0 && haveB !== r1) { interpolateRow(s, r1 * rowStride, cx0, cx1, wxs, width, rowB); haveB = r1; }
    const lower = r1 === r0 ? rowA : rowB;
    const wy = ys.w1[y];
    const o0 = y * outWidth, o1 = plane + o0, o2 = 2 * plane + o0;
    for (let x = 0, i = 0; x < width; x++, i += 3) {
      let top = rowA[i + ch0], bottom = lower[i + ch0];
      out[o0 + x] = fround(top + (bottom - top) * wy) * k0 + b0;
      top = rowA[i + 1]; bottom = lower[i + 1];
      out[o1 + x] = fround(top + (bottom - top) * wy) * k1 + b1;
      top = rowA[i + ch2]; bottom = lower[i + ch2];
      out[o2 + x] = fround(top + (bottom - top) * wy) * k2 + b2;
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
