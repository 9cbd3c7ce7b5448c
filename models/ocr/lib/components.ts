/**
 * Connected regions of a binary mask, reduced to what a minimum-area
 * rectangle needs: each region's left-most and right-most pixel per row (the
 * region's convex hull is the hull of those). This stands in for
 * cv2.findContours(RETR_LIST, CHAIN_APPROX_SIMPLE): same 8-connectivity and
 * the same outer hulls, but holes do not become regions of their own.
 */

export interface Region {
  /** Interleaved x,y of the row extremes (pixel centres at integer coordinates). */
  extremes: Int32Array;
  /** Pixel count. */
  area: number;
}

/**
 * Finds 8-connected regions of non-zero pixels, in raster order of their first
 * pixel, stopping after `maxRegions`. `mask` is consumed (cleared).
 */
export function findRegions(mask: Uint8Array, width: number, height: number, maxRegions: number): Region[] {
  const regions: Region[] = [];
  const stack = new Int32Array(width * height);
  const rowMin = new Int32Array(height).fill(width);
  const rowMax = new Int32Array(height).fill(-1);
  for (let start = 0; start < mask.length && regions.length < maxRegions; start++) {
    if (mask[start] === 0) continue;
    let top = 0;
    stack[top++] = start;
    mask[start] = 0;
    let yMin = height, yMax = -1, area = 0;
    while (top > 0) {
      const p = stack[--top];
      const y = (p / width) | 0;
      const x = p - y * width;
      area++;
      if (x < rowMin[y]) rowMin[y] = x;
      if (x > rowMax[y]) rowMax[y] = x;
      if (y < yMin) yMin = y;
      if (y > yMax) yMax = y;
      const x0 = x > 0 ? x - 1 : x, x1 = x < width - 1 ? x + 1 : x;
      const y0 = y > 0 ? y - 1 : y, y1 = y < height - 1 ? y + 1 : y;
      for (let ny = y0; ny <= y1; ny++) {
        const row = ny * width;
        for (let nx = x0; nx <= x1; nx++) {
          const q = row + nx;
          if (mask[q] !== 0) {
            mask[q] = 0;
            stack[top++] = q;
          }
        }
      }
    }
    const rows = yMax - yMin + 1;
    const extremes = new Int32Array(rows * 4);
    let k = 0;
    for (let y = yMin; y <= yMax; y++) {
      // every row between yMin and yMax is touched: 8-connected regions have no row gaps
      extremes[k++] = rowMin[y]; extremes[k++] = y;
      if (rowMax[y] !== rowMin[y]) { extremes[k++] = rowMax[y]; extremes[k++] = y; }
      rowMin[y] = width;
      rowMax[y] = -1;
    }
    regions.push({ extremes: extremes.subarray(0, k), area });
  }
  return regions;
}
