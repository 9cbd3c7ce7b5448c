/**
 * Plane geometry for text boxes: convex hull, OpenCV-style minimum-area
 * rectangle, and PaddleOCR's corner orderings.
 */

export interface Point {
  x: number;
  y: number;
}

/** Four corners. Order depends on who made it; see the functions below. */
export type Quad = [Point, Point, Point, Point];

export interface RotatedRect {
  cx: number;
  cy: number;
  /** Unit vector of the `width` side; the `height` side is its perpendicular (-uy, ux). */
  ux: number;
  uy: number;
  width: number;
  height: number;
}

/** Andrew's monotone chain; points are interleaved x,y. Returns the hull counter-clockwise (y down), without repeats. */
export function convexHull(xy: ArrayLike<number>): Point[] {
  const n = xy.length / 2;
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => xy[2 * a] - xy[2 * b] || xy[2 * a + 1] - xy[2 * b + 1]);
  const pts: Point[] = [];
  for (const i of idx) {
    const p = { x: xy[2 * i], y: xy[2 * i + 1] };
    const last = pts[pts.length - 1];
    if (!last || last.x !== p.x || last.y !== p.y) pts.push(p);
  }
  if (pts.length < 3) return pts;
  const cross = (o: Point, a: Point, b: Point) => (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
    upper.push(p);
  }
  lower.pop();
  upper.pop();
  return lower.concat(upper);
}

/**
 * Smallest-area enclosing rectangle of a convex hull (cv2.minAreaRect):
 * rotating calipers, one candidate orientation per hull edge.
 */
export function minAreaRect(hull: readonly Point[]): RotatedRect {
  if (hull.length === 0) throw new Error('minAreaRect of no points');
  if (hull.length === 1) return { cx: hull[0].x, cy: hull[0].y, ux: 1, uy: 0, width: 0, height: 0 };
  let best: RotatedRect | undefined;
  let bestArea = Infinity;
  const n = hull.length;
  for (let i = 0; i < n; i++) {
    const a = hull[i];
    const b = hull[(i + 1) % n];
    const len = Math.hypot(b.x - a.x, b.y - a.y);
    if (len === 0) continue;
    const ux = (b.x - a.x) / len;
    const uy = (b.y - a.y) / len;
    let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
    for (const p of hull) {
      const pu = p.x * ux + p.y * uy;
      const pv = -p.x * uy + p.y * ux;
      if (pu < minU) minU = pu;
      if (pu > maxU) maxU = pu;
      if (pv < minV) minV = pv;
      if (pv > maxV) maxV = pv;
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea - 1e-9) {
      bestArea = area;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = { cx: cu * ux - cv * uy, cy: cu * uy + cv * ux, ux, uy, width: maxU - minU, height: maxV - minV };
    }
  }
  return best!;
}

/** cv2.boxPoints: the rectangle's four corners (in no particular order). */
export function rectCorners(r: RotatedRect): Quad {
  const hx = (r.ux * r.width) / 2, hy = (r.uy * r.width) / 2; // half of the width side
  const vx = (-r.uy * r.height) / 2, vy = (r.ux * r.height) / 2; // half of the height side
  return [
    { x: r.cx - hx - vx, y: r.cy - hy - vy },
    { x: r.cx + hx - vx, y: r.cy + hy - vy },
    { x: r.cx + hx + vx, y: r.cy + hy + vy },
    { x: r.cx - hx + vx, y: r.cy - hy + vy },
  ];
}

/** Grow a rectangle by `d` on every side (what offsetting it by d and re-fitting a min-area rectangle gives). */
export function growRect(r: RotatedRect, d: number): RotatedRect {
  return { ...r, width: r.width + 2 * d, height: r.height + 2 * d };
}

/**
 * PaddleOCR's get_mini_boxes ordering of a rectangle's corners: of the two
 * left-most, the upper is first and the lower last; of the two right-most,
 * the upper second and the lower third.
 */
export function miniBoxOrder(corners: Quad): Quad {
  const p = [...corners].sort((a, b) => a.x - b.x || a.y - b.y);
  const [i1, i4] = p[1].y > p[0].y ? [0, 1] : [1, 0];
  const [i2, i3] = p[3].y > p[2].y ? [2, 3] : [3, 2];
  return [p[i1], p[i2], p[i3], p[i4]];
}

/** PaddleOCR's order_points_clockwise (imutils): top-left, top-right, bottom-right, bottom-left. */
export function orderClockwise(q: Quad): Quad {
  const byX = [...q].sort((a, b) => a.x - b.x || a.y - b.y);
  const left = byX.slice(0, 2).sort((a, b) => a.y - b.y);
  const right = byX.slice(2).sort((a, b) => a.y - b.y);
  return [left[0], right[0], right[1], left[1]];
}

export function distance(a: Point, b: Point): number {
  return Math.hypot(a.x - b.x, a.y - b.y);
}
