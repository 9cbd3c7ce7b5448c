/**
 * rgb (UINT8 [h, w, 3]) -> det_input (FP32 [3, h', w']) and det_scale
 * (FP32 [2]: h'/h, w'/w), as PaddleOCR's DetResizeForTest + NormalizeImage +
 * ToCHWImage: h' and w' are multiples of 32, pixels in BGR order,
 * (x / 255 - mean) / std with ImageNet statistics.
 *
 * options:
 *   limit_type: 'max' (default; PaddleOCR's for PP-OCRv4: shrink so the long
 *     side is at most limit_side_len, never enlarge), 'min' (enlarge so the
 *     short side is at least limit_side_len, never shrink) or 'resize_long'
 *     (scale the long side to exactly limit_side_len).
 *   limit_side_len: default 960.
 *   max_side_limit: default 4000; a hard cap on the long side after the above.
 */
import type { FunctionStageModule } from '@ensemble/core';
import { imageFromTensor, resizeToChw } from '../lib/image.js';
import type { Normalisation } from '../lib/image.js';
import { numberOption, stringOption } from '../lib/options.js';
import { float32, takeUint8 } from '../lib/tensors.js';

const IMAGENET: Normalisation = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: true };
const LIMIT_TYPES = ['max', 'min', 'resize_long'] as const;
type LimitType = (typeof LIMIT_TYPES)[number];

/** DetResizeForTest.resize_image_type0: the network input size for a w x h image. */
export function detectionSize(width: number, height: number, limitSideLen: number, limitType: LimitType, maxSideLimit: number): { width: number; height: number } {
  let ratio = 1;
  if (limitType === 'max') {
    if (Math.max(height, width) > limitSideLen) ratio = limitSideLen / Math.max(height, width);
  } else if (limitType === 'min') {
    if (Math.min(height, width) < limitSideLen) ratio = limitSideLen / Math.min(height, width);
  } else {
    ratio = limitSideLen / Math.max(height, width);
  }
  let h = Math.trunc(height * ratio);
  let w = Math.trunc(width * ratio);
  if (Math.max(h, w) > maxSideLimit) {
    const r = maxSideLimit / Math.max(h, w);
    h = Math.trunc(h * r);
    w = Math.trunc(w * r);
  }
  return { width: Math.max(roundHalfEven(w / 32) * 32, 32), height: Math.max(roundHalfEven(h / 32) * 32, 32) };
}

/** Python 3's round(): halves go to the even neighbour (80 px -> 64, 112 px -> 128). */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

const stage: FunctionStageModule = {
  process(item, ctx) {
    const limitSideLen = numberOption(ctx, 'limit_side_len', 960, { min: 32, integer: true });
    const maxSideLimit = numberOption(ctx, 'max_side_limit', 4000, { min: 32, integer: true });
    const limitType = stringOption(ctx, 'limit_type', 'max');
    if (!(LIMIT_TYPES as readonly string[]).includes(limitType)) {
      throw new Error(`stage '${ctx.stage}': option limit_type must be one of ${LIMIT_TYPES.join(', ')}, got ${JSON.stringify(limitType)}`);
    }
    const img = imageFromTensor(takeUint8(item, 'rgb', 3), 'rgb');
    const size = detectionSize(img.width, img.height, limitSideLen, limitType as LimitType, maxSideLimit);
    return {
      det_input: float32([3, size.height, size.width], resizeToChw(img, size.width, size.height, IMAGENET)),
      det_scale: float32([2], new Float32Array([size.height / img.height, size.width / img.width])),
    };
  },
};

export default stage;
