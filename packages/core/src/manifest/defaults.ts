import type { BatchSpec, ScaleSpec } from './types.js';

/** Values a manifest gets for every field it leaves out (docs/manifest.md). */
export const DEFAULT_BATCH: Readonly<BatchSpec> = {
  maxSize: 1,
  maxDelayMs: 0,
  maxQueue: 1024,
  queueFromServiceRate: true,
  queueTimeoutMs: 30_000,
  padValue: 0,
};

export const DEFAULT_SCALE: Readonly<ScaleSpec> = {
  instances: 1,
  threads: 1,
  memoryMb: 1024,
};

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_GRAPH_OPTIMIZATION = 'all';
export const DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_ITEMS = 10_000;
/** Bytes one request's stage outputs may hold in all (1 GiB): past it the request gets 413. */
export const DEFAULT_MAX_RUN_BYTES = 1024 ** 3;
export const DEFAULT_VERSION = '1';

/** Lambda's own bounds on memory size. */
export const LAMBDA_MEMORY_MB = { min: 128, max: 10_240 } as const;
