import type { OnnxStage } from '../manifest/types.js';

/**
 * Batches of one stage a gateway keeps in flight on Lambda when the stage has
 * no reserved concurrency. Lambda scales an unreserved function out on its
 * own (up to the account's pool), so `instances` (a local worker count) would
 * be the wrong bound: a request's chunks would run one after another.
 */
export const LAMBDA_UNRESERVED_CONCURRENCY = 10;

/**
 * How many chunks of a stage the gateway invokes at once: the reserved
 * concurrency when the manifest sets one (more would only be throttled),
 * otherwise the larger of `instances` and LAMBDA_UNRESERVED_CONCURRENCY.
 */
export function lambdaStageConcurrency(stage: Pick<OnnxStage, 'scale'>): number {
  const { reservedConcurrency, instances } = stage.scale;
  if (reservedConcurrency !== undefined && reservedConcurrency > 0) return reservedConcurrency;
  return Math.max(instances, LAMBDA_UNRESERVED_CONCURRENCY);
}
