/**
 * line (UINT8 [h, w, 3]) + cls_prob (FP32 [2]: P(0°), P(180°)) ->
 * line_upright (UINT8 [h, w, 3]): the line turned half a turn when the
 * classifier says '180' with probability above `threshold` (PaddleOCR's
 * cls_thresh, default 0.9); otherwise the line as it was.
 */
import type { FunctionStageModule } from '@ensemble/core';
import { imageFromTensor, imageToTensor, rotate180 } from '../lib/image.js';
import { numberOption } from '../lib/options.js';
import { takeFloat32, takeUint8 } from '../lib/tensors.js';

const stage: FunctionStageModule = {
  process(item, ctx) {
    const threshold = numberOption(ctx, 'threshold', 0.9, { min: 0, max: 1 });
    const line = takeUint8(item, 'line', 3);
    const prob = takeFloat32(item, 'cls_prob', 1);
    if (prob.data.length !== 2) throw new Error(`input 'cls_prob' has ${prob.data.length} classes, expected 2 (0, 180)`);
    // ClsPostProcess: argmax over ['0', '180'].
    const flipped = prob.data[1] > prob.data[0] && prob.data[1] > threshold;
    // A copy, not a view: the two tensors may be transferred to different threads.
    if (!flipped) return { line_upright: { datatype: 'UINT8', shape: line.shape.slice(), data: line.data.slice() } };
    return { line_upright: imageToTensor(rotate180(imageFromTensor(line, 'line'))) };
  },
};

export default stage;
