/**
 * line (UINT8 [h, w, 3]) -> cls_input (FP32 [3, 48, 192]) for the 0°/180°
 * direction classifier, as PaddleOCR's TextClassifier.resize_norm_img:
 * scaled to height 48 keeping the aspect ratio (width at most 192, longer
 * lines squeezed), BGR, (x / 255 - 0.5) / 0.5, zero-padded on the right.
 */
import type { FunctionStageModule } from '@ensemble/core';
import { imageFromTensor, resizeToChw } from '../lib/image.js';
import type { Normalisation } from '../lib/image.js';
import { float32, takeUint8 } from '../lib/tensors.js';

const HEIGHT = 48;
const WIDTH = 192;
const HALF: Normalisation = { scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], bgr: true };

const stage: FunctionStageModule = {
  process(item) {
    const img = imageFromTensor(takeUint8(item, 'line', 3), 'line');
    const width = Math.min(WIDTH, Math.ceil((HEIGHT * img.width) / img.height));
    return { cls_input: float32([3, HEIGHT, WIDTH], resizeToChw(img, width, HEIGHT, HALF, WIDTH)) };
  },
};

export default stage;
