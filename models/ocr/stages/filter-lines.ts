/**
 * Fan-out of zero or one: line_text (BYTES scalar) + line_confidence (FP32
 * scalar) + line_box (FP32 [4, 2]) -> text, confidence, box for the lines
 * worth returning, nothing for the rest.
 *
 * As PaddleOCR's TextSystem drop_score: lines whose recogniser confidence is
 * under `min_confidence` (default 0.5) are dropped. Empty lines have
 * confidence 0, so they go too; DB leaves small blobs in wide word gaps that
 * decode to nothing. Set min_confidence to 0 to get every detected line.
 */
import type { FunctionStageModule } from '@ensemble/core';
import { numberOption } from '../lib/options.js';
import { bytesScalar, float32, float32Scalar, takeBytesScalar, takeFloat32 } from '../lib/tensors.js';

const stage: FunctionStageModule = {
  process(item, ctx) {
    const minConfidence = numberOption(ctx, 'min_confidence', 0.5, { min: 0, max: 1 });
    const text = takeBytesScalar(item, 'line_text');
    const confidence = takeFloat32(item, 'line_confidence', 0).data[0];
    const box = takeFloat32(item, 'line_box', 2);
    if (confidence < minConfidence) return [];
    // Copies, not views: outputs may be transferred to other threads.
    return [{ text: bytesScalar(text.slice()), confidence: float32Scalar(confidence), box: float32(box.shape.slice(), box.data.slice()) }];
  },
};

export default stage;
