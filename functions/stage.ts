/**
 * Lambda entry point of one ONNX stage (which one: ENSEMBLE_PIPELINE,
 * ENSEMBLE_STAGE, ENSEMBLE_MANIFEST). Weights and session load during init;
 * each invocation runs one batch.
 */
import { createStageHandler } from '@ensemble/core/lambda/stage.js';

export const handler = await createStageHandler();
