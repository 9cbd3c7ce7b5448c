import { EnsembleError } from './errors.js';

/**
 * A call's deadline as an AbortSignal that also says when it fires. The
 * batcher owns one per batch; transports bound their work by the signal, and
 * one that must decide ahead (the Lambda transport: is a backoff worth
 * sleeping?) reads the time from it instead of keeping a timer of its own.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  /** performance.now() at which the signal aborts. */
  readonly at: number;
  /** The call ended in time: drop the timer (the signal never aborts). */
  cancel(): void;
}

/** Node's timers hold a signed 32-bit millisecond count: a longer delay fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const deadlines = new WeakMap<AbortSignal, number>();

/** A signal that aborts with `reason()` after `ms`. */
export function startDeadline(ms: number, reason: () => Error): Deadline {
  const controller = new AbortController();
  const at = performance.now() + ms;
  deadlines.set(controller.signal, at);
  const timer = setTimeout(() => controller.abort(reason()), ms);
  return { signal: controller.signal, at, cancel: () => clearTimeout(timer) };
}

/** When `signal` aborts on its own, if it came from startDeadline. */
export function deadlineOf(signal: AbortSignal | undefined): number | undefined {
  return signal ? deadlines.get(signal) : undefined;
}

/** `work`, or the signal's reason as soon as it aborts (the work itself is left to end on its own). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The error an aborted signal carries; anything else counts as the client going away. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new EnsembleError('request aborted', 'cancelled');
}
