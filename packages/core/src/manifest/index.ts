export type {
  BatchSpec, FunctionStage, Manifest, OnnxStage, ScaleSpec, StageSpec, TensorSpec,
} from './types.js';
export { findManifests, loadManifest, MANIFEST_FILE } from './load.js';
export { verifyManifest } from './verify.js';
export {
  DEFAULT_BATCH, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_SCALE, DEFAULT_TIMEOUT_MS,
} from './defaults.js';
export { PIPELINE_NAME, STAGE_NAME } from './schema.js';
