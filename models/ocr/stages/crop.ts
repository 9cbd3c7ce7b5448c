/**
 * Fan-out: rgb (UINT8 [h, w, 3]) + boxes (FP32 [n, 4, 2]) -> n items, each
 * line (UINT8 [h, w, 3]: the box cut out and straightened) and line_box
 * (FP32 [4, 2]: its corners in the source image). No boxes, no items.
 *
 * As PaddleOCR's get_rotate_crop_image: the crop is as wide as the box's
 * longer horizontal edge and as tall as its longer vertical edge, sampled
 * bicubically with replicated borders, and a crop at least 1.5 times taller
 * than wide is turned a quarter counter-clockwise (vertical text).
 */
import type { Item, FunctionStageModule } from '@ensemble/core';
import { distance } from '../lib/geometry.js';
import type { Quad } from '../lib/geometry.js';
import { imageFromTensor, imageToTensor, rotate90CounterClockwise } from '../lib/image.js';
import { float32, takeFloat32, takeUint8 } from '../lib/tensors.js';
import { warpQuad } from '../lib/warp.js';

const stage: FunctionStageModule = {
  process(item) {
    const img = imageFromTensor(takeUint8(item, 'rgb', 3), 'rgb');
    const boxes = takeFloat32(item, 'boxes', 3);
    if (boxes.shape[1] !== 4 || boxes.shape[2] !== 2) throw new Error(`input 'boxes' has shape [${boxes.shape.join(', ')}], expected [n, 4, 2]`);
    const out: Item[] = [];
    for (let i = 0; i < boxes.shape[0]; i++) {
      const b = boxes.data.subarray(i * 8, i * 8 + 8);
      const quad: Quad = [{ x: b[0], y: b[1] }, { x: b[2], y: b[3] }, { x: b[4], y: b[5] }, { x: b[6], y: b[7] }];
      // At least 1 px so every box keeps its line (and its place in the output).
      const width = Math.max(1, Math.trunc(Math.max(distance(quad[0], quad[1]), distance(quad[2], quad[3]))));
      const height = Math.max(1, Math.trunc(Math.max(distance(quad[0], quad[3]), distance(quad[1], quad[2]))));
      let line = warpQuad(img, quad, width, height);
      if (line.height / line.width >= 1.5) line = rotate90CounterClockwise(line);
      out.push({ line: imageToTensor(line), line_box: float32([4, 2], b.slice()) });
    }
    return out;
  },
};

export default stage;
