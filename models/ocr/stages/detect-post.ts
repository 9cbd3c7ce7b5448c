/**
 * det_prob (FP32 [1, h', w'], the detector's text probability map) +
 * det_scale (FP32 [2]: h'/h, w'/w) -> boxes (FP32 [n, 4, 2]: corners
 * top-left, top-right, bottom-right, bottom-left as (x, y) in source image
 * pixels, in reading order) and, with emit_scores, box_scores (FP32 [n]).
 *
 * The source size comes back from det_scale (h = h' / (h'/h)), so this stage
 * does not need the image itself (which would be a large payload on Lambda).
 *
 * options (PaddleOCR's names and inference defaults): thresh 0.3,
 * box_thresh 0.6, unclip_ratio 1.5, use_dilation false, max_candidates 1000;
 * line_tolerance 10 (px: boxes whose tops differ by less, or by less than
 * half their height, are one line, ordered left to right); emit_scores false
 * (box_scores is only emitted when asked for, so the pipeline need not route
 * a tensor nobody reads).
 */
import type { FunctionStageModule } from '@ensemble/core';
import { DB_DEFAULTS, dbBoxes, sortReadingOrder } from '../lib/db-postprocess.js';
import { booleanOption, numberOption } from '../lib/options.js';
import { float32, takeFloat32 } from '../lib/tensors.js';

const stage: FunctionStageModule = {
  process(item, ctx) {
    const opts = {
      thresh: numberOption(ctx, 'thresh', DB_DEFAULTS.thresh, { min: 0, max: 1 }),
      boxThresh: numberOption(ctx, 'box_thresh', DB_DEFAULTS.boxThresh, { min: 0, max: 1 }),
      unclipRatio: numberOption(ctx, 'unclip_ratio', DB_DEFAULTS.unclipRatio, { min: 0 }),
      maxCandidates: numberOption(ctx, 'max_candidates', DB_DEFAULTS.maxCandidates, { min: 1, integer: true }),
      minSize: DB_DEFAULTS.minSize,
      useDilation: booleanOption(ctx, 'use_dilation', DB_DEFAULTS.useDilation),
    };
    const lineTolerance = numberOption(ctx, 'line_tolerance', 10, { min: 0 });
    const emitScores = booleanOption(ctx, 'emit_scores', false);

    const prob = takeFloat32(item, 'det_prob', 3);
    const [channels, height, width] = prob.shape;
    if (channels !== 1) throw new Error(`input 'det_prob' has shape [${prob.shape.join(', ')}], expected [1, h, w]`);
    const scale = takeFloat32(item, 'det_scale', 1);
    const [ratioH, ratioW] = scale.data;
    if (scale.data.length !== 2 || !(ratioH > 0) || !(ratioW > 0)) throw new Error(`input 'det_scale' must be two positive ratios, got [${Array.from(scale.data).join(', ')}]`);
    const srcHeight = Math.max(1, Math.round(height / ratioH));
    const srcWidth = Math.max(1, Math.round(width / ratioW));

    const found = sortReadingOrder(dbBoxes({ width, height, data: prob.data }, srcWidth, srcHeight, opts), lineTolerance);
    const boxes = new Float32Array(found.length * 8);
    found.forEach((b, i) => b.quad.forEach((p, k) => { boxes[i * 8 + k * 2] = p.x; boxes[i * 8 + k * 2 + 1] = p.y; }));
    const out: Record<string, ReturnType<typeof float32>> = { boxes: float32([found.length, 4, 2], boxes) };
    if (emitScores) out.box_scores = float32([found.length], Float32Array.from(found, (b) => b.score));
    return out;
  },
};

export default stage;
