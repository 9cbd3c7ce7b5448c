/**
 * The API a stage author imports: `import type { FunctionStageModule } from '@ensemble/core'`.
 * Stage modules in models/ import the engine through this file only. It stays small on purpose:
 * the gateway's Lambda bundle holds every function stage, and whatever this file pulls in with them.
 */
export type { FunctionStageContext, FunctionStageModule, ItemOutcome } from './runtime/types.js';
export type {
  BatchEvent, FindingEvent, LoadedObserver, Observer, ObserverContext, ObserverModule, RequestEnd, RequestStart,
} from './observability/events.js';
export type { Finding, RunRecord, StageRunRecord } from './storage/types.js';
export type { Datatype, Item, NumericData, Tensor, TensorData } from './tensor/types.js';
export { DATATYPES } from './tensor/types.js';
export { concatRows, emptyRows, padRows, splitRows, stackRows, type StackOptions } from './tensor/rows.js';
export {
  BadRequestError, EnsembleError, NotFoundError, NotReadyError, OverloadedError, PayloadTooLargeError, StageError, TimeoutError,
  type ErrorCode,
} from './errors.js';
