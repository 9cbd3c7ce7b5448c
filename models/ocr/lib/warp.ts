/**
 * Perspective crop of a quadrilateral into an upright rectangle, as
 * PaddleOCR's get_rotate_crop_image does with cv2.getPerspectiveTransform +
 * cv2.warpPerspective(INTER_CUBIC, BORDER_REPLICATE).
 */
import type { Point, Quad } from './geometry.js';
import type { RgbImage } from './image.js';

/** Solves A x = b in place (Gaussian elimination, partial pivoting). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r][c]) > Math.abs(a[piv][c])) piv = r;
    if (Math.abs(a[piv][c]) < 1e-12) throw new Error('degenerate quadrilateral: no perspective transform');
    [a[c], a[piv]] = [a[piv], a[c]];
    [b[c], b[piv]] = [b[piv], b[c]];
    for (let r = c + 1; r < n; r++) {
      const f = a[r][c] / a[c][c];
      for (let k = c; k < n; k++) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r];
    for (let k = r + 1; k < n; k++) s -= a[r][k] * x[k];
    x[r] = s / a[r][r];
  }
  return x;
}

/** The 3x3 homography (row-major, h[8] = 1) taking each `from` point to the matching `to` point. */
export function perspectiveTransform(from: readonly Point[], to: readonly Point[]): number[] {
  const a: number[][] = [];
  const b: number[] = [];
  for (let i = 0; i < 4; i++) {
    const { x, y } = from[i];
    const { x: u, y: v } = to[i];
    a.push([x, y, 1, 0, 0, 0, -x * u, -y * u]); b.push(u);
    a.push([0, 0, 0, x, y, 1, -x * v, -y * v]); b.push(v);
  }
  return [...solve(a, b), 1];
}

// OpenCV's bicubic kernel (A = -0.75).
function cubicWeights(t: number, w: Float64Array): void {
  const A = -0.75;
  const x0 = t + 1, x1 = t, x2 = 1 - t;
  w[0] = ((A * x0 - 5 * A) * x0 + 8 * A) * x0 - 4 * A;
  w[1] = ((A + 2) * x1 - (A + 3)) * x1 * x1 + 1;
  w[2] = ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1;
  w[3] = 1 - w[0] - w[1] - w[2];
}

/**
 * Samples `quad` (top-left, top-right, bottom-right, bottom-left, in `src`
 * pixels) into a width x height image: output pixel (0,0) lands on quad[0]
 * and (width, height) on quad[2].
 */
export function warpQuad(src: RgbImage, quad: Quad, width: number, height: number): RgbImage {
  const rect: Point[] = [{ x: 0, y: 0 }, { x: width, y: 0 }, { x: width, y: height }, { x: 0, y: height }];
  const h = perspectiveTransform(rect, quad);
  // The solver leaves residues of about 1e-19 where an upright box's transform has zeros;
  // below 1e-9 px over the whole crop they move no sample.
  const span = Math.max(width, height);
  if ((Math.abs(h[1]) + Math.abs(h[3])) * span < 1e-9 && (Math.abs(h[6]) + Math.abs(h[7])) * span < 1e-12) {
    return warpAxisAligned(src, h[0], h[2], h[4], h[5], width, height);
  }
  return warpPerspective(src, h, width, height);
}

/**
 * An upright box (the usual case: horizontal text) maps x and y on their own,
 * so the source columns, rows and cubic weights are computed once per output
 * column and row, and each needed source row is interpolated horizontally
 * once for all the output rows that read it. The sums are the general path's,
 * in its order: horizontal taps first, then the vertical ones.
 */
function warpAxisAligned(src: RgbImage, sx: number, tx: number, sy: number, ty: number, width: number, height: number): RgbImage {
  const s = src.data;
  const sw = src.width, sh = src.height;
  const wx = new Float64Array(width * 4), cols = new Int32Array(width * 4);
  const w = new Float64Array(4);
  for (let x = 0; x < width; x++) {
    const fx = sx * x + tx;
    const ix = Math.floor(fx);
    cubicWeights(fx - ix, w);
    for (let k = 0; k < 4; k++) {
      wx[x * 4 + k] = w[k];
      cols[x * 4 + k] = Math.min(Math.max(ix - 1 + k, 0), sw - 1) * 3;
    }
  }
  const wy = new Float64Array(height * 4), rows = new Int32Array(height * 4);
  let lo = sh, hi = -1;
  for (let y = 0; y < height; y++) {
    const fy = sy * y + ty;
    const iy = Math.floor(fy);
    cubicWeights(fy - iy, w);
    for (let k = 0; k < 4; k++) {
      const r = Math.min(Math.max(iy - 1 + k, 0), sh - 1);
      wy[y * 4 + k] = w[k];
      rows[y * 4 + k] = r;
      if (r < lo) lo = r;
      if (r > hi) hi = r;
    }
  }
  // Each source row in [lo, hi] interpolated at every output column, once.
  const stride = width * 3;
  const hz = new Float64Array((hi - lo + 1) * stride);
  for (let r = lo; r <= hi; r++) {
    const base = r * sw * 3;
    let o = (r - lo) * stride;
    for (let x = 0; x < width; x++) {
      const k = x * 4;
      const w0 = wx[k], w1 = wx[k + 1], w2 = wx[k + 2], w3 = wx[k + 3];
      const c0 = base + cols[k], c1 = base + cols[k + 1], c2 = base + cols[k + 2], c3 = base + cols[k + 3];
      for (let c = 0; c < 3; c++) hz[o++] = w0 * s[c0 + c] + w1 * s[c1 + c] + w2 * s[c2 + c] + w3 * s[c3 + c];
    }
  }
  const out = new Uint8Array(width * height * 3);
  let o = 0;
  for (let y = 0; y < height; y++) {
    const k = y * 4;
    const w0 = wy[k], w1 = wy[k + 1], w2 = wy[k + 2], w3 = wy[k + 3];
    const r0 = (rows[k] - lo) * stride, r1 = (rows[k + 1] - lo) * stride, r2 = (rows[k + 2] - lo) * stride, r3 = (rows[k + 3] - lo) * stride;
    for (let i = 0; i < stride; i++) {
      let acc = 0;
      acc += w0 * hz[r0 + i];
      acc += w1 * hz[r1 + i];
      acc += w2 * hz[r2 + i];
      acc += w3 * hz[r3 + i];
      out[o++] = acc <= 0 ? 0 : acc >= 255 ? 255 : Math.round(acc);
    }
  }
  return { width, height, data: out };
}

/**
 * Any quadrilateral: each output pixel's source point through the full
 * homography, then OpenCV's 4x4 bicubic taps with replicated borders. The
 * weights and taps are kept in locals and the channels unrolled; the sums are
 * the same as a loop over rows of horizontal taps, in the same order.
 */
export function warpPerspective(src: RgbImage, h: number[], width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  const s = src.data;
  const sw = src.width, sh = src.height;
  const rowStride = sw * 3;
  const maxCol = sw - 1, maxRow = sh - 1;
  const [h0, h1, h2, h3, h4, h5, h6, h7, h8] = h;
  const A = -0.75;
  let o = 0;
  for (let y = 0; y < height; y++) {
    const h1y = h1 * y, h4y = h4 * y, h7y = h7 * y;
    for (let x = 0; x < width; x++) {
      const z = h6 * x + h7y + h8;
      const fx = (h0 * x + h1y + h2) / z;
      const fy = (h3 * x + h4y + h5) / z;
      const ix = Math.floor(fx), iy = Math.floor(fy);
      // cubicWeights(fx - ix) and cubicWeights(fy - iy), inlined.
      const tx = fx - ix, ty = fy - iy;
      const ax0 = tx + 1, ax2 = 1 - tx;
      const wx0 = ((A * ax0 - 5 * A) * ax0 + 8 * A) * ax0 - 4 * A;
      const wx1 = ((A + 2) * tx - (A + 3)) * tx * tx + 1;
      const wx2 = ((A + 2) * ax2 - (A + 3)) * ax2 * ax2 + 1;
      const wx3 = 1 - wx0 - wx1 - wx2;
      const ay0 = ty + 1, ay2 = 1 - ty;
      const wy0 = ((A * ay0 - 5 * A) * ay0 + 8 * A) * ay0 - 4 * A;
      const wy1 = ((A + 2) * ty - (A + 3)) * ty * ty + 1;
      const wy2 = ((A + 2) * ay2 - (A + 3)) * ay2 * ay2 + 1;
      const wy3 = 1 - wy0 - wy1 - wy2;
      // BORDER_REPLICATE
      const c0 = clamp(ix - 1, maxCol) * 3, c1 = clamp(ix, maxCol) * 3, c2 = clamp(ix + 1, maxCol) * 3, c3 = clamp(ix + 2, maxCol) * 3;
      const r0 = clamp(iy - 1, maxRow) * rowStride, r1 = clamp(iy, maxRow) * rowStride;
      const r2 = clamp(iy + 1, maxRow) * rowStride, r3 = clamp(iy + 2, maxRow) * rowStride;
      for (let c = 0; c < 3; c++) {
        let b = r0 + c;
        let acc = wy0 * (wx0 * s[b + c0] + wx1 * s[b + c1] + wx2 * s[b + c2] + wx3 * s[b + c3]);
        b = r1 + c;
        acc += wy1 * (wx0 * s[b + c0] + wx1 * s[b + c1] + wx2 * s[b + c2] + wx3 * s[b + c3]);
        b = r2 + c;
        acc += wy2 * (wx0 * s[b + c0] + wx1 * s[b + c1] + wx2 * s[b + c2] + wx3 * s[b + c3]);
        b = r3 + c;
        acc += wy3 * (wx0 * s[b + c0] + wx1 * s[b + c1] + wx2 * s[b + c2] + wx3 * s[b + c3]);
        out[o++] = acc <= 0 ? 0 : acc >= 255 ? 255 : Math.round(acc);
      }
    }
  }
  return { width, height, data: out };
}

function clamp(i: number, max: number): number {
  return i < 0 ? 0 : i > max ? max : i;
}
