/**
 * Lambda entry point of one ONNX stage (which one: ENSEMBLE_PIPELINE,
 * ENSEMBLE_STAGE, ENSEMBLE_MANIFEST). Weights and session load during init;
 * each invocation runs one batch.
 *
 * The weights' download starts first, and the handler's module (with
 * onnxruntime-node) is imported while it runs: in the packaged function that
 * module is a chunk of its own, so loading ONNX Runtime overlaps the fetch.
 */
import { startStageWeights } from '@ensemble/core/lambda/stage-weights.js';

const weights = startStageWeights(process.env);
const { createStageHandler } = await import('@ensemble/core/lambda/stage.js');

export const handler = await createStageHandler(process.env, { weights });
