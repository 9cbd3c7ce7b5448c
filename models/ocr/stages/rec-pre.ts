/**
 * line_upright (UINT8 [h, w, 3]) -> rec_input (FP32 [3, 48, W]) for the
 * recogniser, as PaddleOCR's TextRecognizer.resize_norm_img: scaled to
 * height 48 keeping the aspect ratio, BGR, (x / 255 - 0.5) / 0.5, and
 * zero-padded on the right up to W.
 *
 * PaddleOCR pads every line of a batch to the widest one and to at least
 * 320 px. Here each item gets its own width (rounded up to a multiple of 8,
 * the recogniser's stride) and the engine pads a batch along axis 2 with 0,
 * the same value PaddleOCR pads with.
 *
 * options: min_width (default 320, PaddleOCR's rec_image_shape width),
 * max_width (default 2560: longer lines are squeezed to it, bounding the
 * cost of one pathological box).
 */
import type { FunctionStageModule } from '@ensemble/core';
import { imageFromTensor, resizeToChw } from '../lib/image.js';
import type { Normalisation } from '../lib/image.js';
import { numberOption } from '../lib/options.js';
import { float32, takeUint8 } from '../lib/tensors.js';

const HEIGHT = 48;
const STRIDE = 8;
const HALF: Normalisation = { scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], bgr: true };

/** Width the line is scaled to and width of the padded tensor. */
export function recognitionWidths(width: number, height: number, minWidth: number, maxWidth: number): { resized: number; padded: number } {
  const resized = Math.max(1, Math.min(Math.ceil((HEIGHT * width) / height), maxWidth));
  const padded = Math.max(minWidth, Math.ceil(resized / STRIDE) * STRIDE);
  return { resized, padded };
}

const stage: FunctionStageModule = {
  process(item, ctx) {
    const minWidth = numberOption(ctx, 'min_width', 320, { min: STRIDE, integer: true });
    const maxWidth = numberOption(ctx, 'max_width', 2560, { min: STRIDE, integer: true });
    const img = imageFromTensor(takeUint8(item, 'line_upright', 3), 'line_upright');
    const { resized, padded } = recognitionWidths(img.width, img.height, minWidth, maxWidth);
    return { rec_input: float32([3, HEIGHT, padded], resizeToChw(img, resized, HEIGHT, HALF, padded)) };
  },
};

export default stage;
