/**
 * When a failed Invoke is worth another try, and how long to wait first:
 * exponential backoff with full jitter (AWS's recommendation for many callers
 * hitting one throttled resource), never sooner than the service's
 * Retry-After, and never past the caller's deadline.
 */

export interface RetryPolicy {
  /** First backoff ceiling. */
  baseMs: number;
  /** Largest backoff ceiling. */
  capMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 50, capMs: 2_000 };

/** 'throttle': Lambda refused for concurrency (429); 'transient': 5xx or a dropped connection; 'fatal': retrying will not help. */
export type FailureKind = 'throttle' | 'transient' | 'fatal';

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND']);

export function classifyInvokeError(e: unknown): FailureKind {
  const err = e as { name?: string; code?: string; $fault?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const status = err?.$metadata?.httpStatusCode;
  if (err?.name === 'TooManyRequestsException' || status === 429) return 'throttle';
  if ((status !== undefined && status >= 500) || err?.$fault === 'server') return 'transient';
  // No HTTP answer at all: the connection failed before Lambda said anything.
  if (status === undefined && err?.code && TRANSIENT_CODES.has(err.code)) return 'transient';
  return 'fatal';
}

/** The service's Retry-After in seconds, if it sent one (the SDK keeps it as a string). */
export function retryAfterSeconds(e: unknown): number | undefined {
  const raw = (e as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  const n = typeof raw === 'string' ? Number(raw) : typeof raw === 'number' ? raw : NaN;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * Wait before retry number `attempt` (0 for the first retry): uniform in
 * [0, min(cap, base * 2^attempt)], raised to the Retry-After when given.
 */
export function backoffMs(attempt: number, policy: RetryPolicy, retryAfter?: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  const jittered = random() * ceiling;
  return retryAfter === undefined ? jittered : Math.max(jittered, retryAfter * 1000);
}

/** Resolves after `ms`, or rejects with the signal's reason if it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
