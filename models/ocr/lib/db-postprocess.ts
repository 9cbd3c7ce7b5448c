/**
 * DB (Differentiable Binarization) post-processing, after PaddleOCR's
 * DBPostProcess (box_type 'quad', score_mode 'fast') followed by
 * TextDetector.filter_tag_det_res and predict_system.sorted_boxes.
 */
import { findRegions } from './components.js';
import { convexHull, distance, growRect, minAreaRect, miniBoxOrder, orderClockwise, rectCorners } from './geometry.js';
import type { Point, Quad } from './geometry.js';

export interface DbOptions {
  /** Pixel threshold on the probability map (det_db_thresh). */
  thresh: number;
  /** Minimum mean probability inside a box (det_db_box_thresh). */
  boxThresh: number;
  /** How far boxes are grown back out: distance = area * ratio / perimeter (det_db_unclip_ratio). */
  unclipRatio: number;
  maxCandidates: number;
  /** Rectangles with a shorter side below this (in map pixels) are noise. */
  minSize: number;
  /** Dilate the binary map with a 2x2 kernel first, joining regions a pixel apart (use_dilation). */
  useDilation: boolean;
}

/** PaddleOCR's inference defaults (tools/infer/utility.py). */
export const DB_DEFAULTS: DbOptions = { thresh: 0.3, boxThresh: 0.6, unclipRatio: 1.5, maxCandidates: 1000, minSize: 3, useDilation: false };

export interface ProbMap {
  width: number;
  height: number;
  data: Float32Array;
}

export interface DetectedBox {
  /** Top-left, top-right, bottom-right, bottom-left in source image pixels. */
  quad: Quad;
  score: number;
}

/**
 * box_score_fast: mean probability over the quadrilateral's pixels (cv2.fillPoly
 * of the corners truncated to integers, inside the clipped bounding box).
 */
export function meanInside(prob: ProbMap, quad: Quad): number {
  const { width: w, height: h, data } = prob;
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const xs = quad.map((p) => p.x), ys = quad.map((p) => p.y);
  const xmin = clamp(Math.floor(Math.min(...xs)), w - 1), xmax = clamp(Math.ceil(Math.max(...xs)), w - 1);
  const ymin = clamp(Math.floor(Math.min(...ys)), h - 1), ymax = clamp(Math.ceil(Math.max(...ys)), h - 1);
  const pts = quad.map((p) => ({ x: Math.trunc(p.x - xmin), y: Math.trunc(p.y - ymin) }));
  let sum = 0, n = 0;
  for (let ry = 0; ry <= ymax - ymin; ry++) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < 4; i++) {
      const a = pts[i], b = pts[(i + 1) % 4];
      if (ry < Math.min(a.y, b.y) || ry > Math.max(a.y, b.y)) continue;
      if (a.y === b.y) {
        lo = Math.min(lo, a.x, b.x); hi = Math.max(hi, a.x, b.x);
      } else {
        const x = a.x + ((ry - a.y) * (b.x - a.x)) / (b.y - a.y);
        lo = Math.min(lo, x); hi = Math.max(hi, x);
      }
    }
    if (lo > hi) continue;
    const x0 = Math.max(Math.round(lo), 0), x1 = Math.min(Math.round(hi), xmax - xmin);
    const row = (ymin + ry) * w + xmin;
    for (let rx = x0; rx <= x1; rx++) { sum += data[row + rx]; n++; }
  }
  return n === 0 ? 0 : sum / n;
}

/**
 * The binary map (probability > thresh), dilated when asked like cv2.dilate
 * with a 2x2 kernel (anchor at its centre): a pixel is set if it or its left,
 * upper or upper-left neighbour is over the threshold. One pass over the map,
 * keeping the previous row's thresholded values.
 */
export function binaryMap(data: Float32Array, width: number, height: number, thresh: number, dilate: boolean): Uint8Array {
  const mask = new Uint8Array(width * height);
  if (!dilate) {
    for (let i = 0; i < mask.length; i++) mask[i] = data[i] > thresh ? 1 : 0;
    return mask;
  }
  let above = new Uint8Array(width), row = new Uint8Array(width);
  for (let y = 0; y < height; y++) {
    const base = y * width;
    let left = 0, upLeft = 0;
    for (let x = 0; x < width; x++) {
      const on = data[base + x] > thresh ? 1 : 0;
      const up = above[x];
      row[x] = on;
      mask[base + x] = on | left | up | upLeft;
      left = on;
      upLeft = up;
    }
    const t = above; above = row; row = t;
  }
  return mask;
}

/**
 * Boxes from a probability map of size (width, height) that was computed on
 * the source image resized to it; results are in source pixels
 * (srcWidth x srcHeight), clockwise from top-left, in the order regions were
 * found (use sortReadingOrder).
 */
export function dbBoxes(prob: ProbMap, srcWidth: number, srcHeight: number, opts: DbOptions = DB_DEFAULTS): DetectedBox[] {
  const { width, height, data } = prob;
  const mask = binaryMap(data, width, height, opts.thresh, opts.useDilation);
  const found: DetectedBox[] = [];
  for (const region of findRegions(mask, width, height, opts.maxCandidates)) {
    const rect = minAreaRect(convexHull(region.extremes));
    if (Math.min(rect.width, rect.height) < opts.minSize) continue;
    const score = meanInside(prob, miniBoxOrder(rectCorners(rect)));
    if (score < opts.boxThresh) continue;
    // Offsetting a rectangle by d (pyclipper, round joins) and re-fitting the
    // minimum-area rectangle is the rectangle grown by d on every side.
    const d = (rect.width * rect.height * opts.unclipRatio) / (2 * (rect.width + rect.height));
    const grown = growRect(rect, d);
    if (Math.min(grown.width, grown.height) < opts.minSize + 2) continue;
    const scaled = rectCorners(grown).map((p) => ({
      x: Math.min(Math.max(Math.round((p.x / width) * srcWidth), 0), srcWidth),
      y: Math.min(Math.max(Math.round((p.y / height) * srcHeight), 0), srcHeight),
    })) as Quad;
    // filter_tag_det_res: order, clip inside the image, drop slivers.
    const quad = orderClockwise(scaled).map((p) => ({
      x: Math.trunc(Math.min(Math.max(p.x, 0), srcWidth - 1)),
      y: Math.trunc(Math.min(Math.max(p.y, 0), srcHeight - 1)),
    })) as Quad;
    if (Math.trunc(distance(quad[0], quad[1])) <= 3 || Math.trunc(distance(quad[0], quad[3])) <= 3) continue;
    found.push({ quad, score });
  }
  return found;
}

/**
 * predict_system.sorted_boxes: by top-left corner (y, then x), then a box whose
 * top-left corner is level with its predecessor's is moved left of it when it
 * starts further left. PaddleOCR calls boxes level when their tops differ by
 * less than 10 px; a fixed pixel count fails for large text (a word without
 * ascenders sits a fifth of the font size lower), so here the tolerance is the
 * larger of `lineTolerance` and half the smaller box's height. (PaddleOCR's
 * original loop also never compares the first two boxes; its later releases
 * fix that, and so does this.)
 */
export function sortReadingOrder<T extends { quad: readonly Point[] }>(boxes: T[], lineTolerance = 10): T[] {
  const out = [...boxes].sort((a, b) => a.quad[0].y - b.quad[0].y || a.quad[0].x - b.quad[0].x);
  const height = (b: T) => distance(b.quad[0], b.quad[3]);
  for (let i = 0; i < out.length - 1; i++) {
    for (let j = i; j >= 0; j--) {
      const a = out[j], b = out[j + 1];
      const tolerance = Math.max(lineTolerance, Math.min(height(a), height(b)) / 2);
      if (Math.abs(b.quad[0].y - a.quad[0].y) < tolerance && b.quad[0].x < a.quad[0].x) {
        [out[j], out[j + 1]] = [b, a];
      } else {
        break;
      }
    }
  }
  return out;
}
