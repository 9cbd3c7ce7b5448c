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

/**
 * What an item waiting in a batcher is dropped by: an AbortSignal, or a
 * RunCancel (the same three members, without an EventTarget behind them).
 */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
}

/**
 * One run's cancel, for the items it queues in batchers: an AbortController
 * made for every request (and its signal, and an EventTarget's listener
 * bookkeeping) cost each request something in the gateway's profile, for the
 * rare one that fails or whose client leaves. Listeners are told once, in
 * the order added.
 */
export class RunCancel implements CancelSignal {
  private why: Error | undefined;
  private listeners: (() => void)[] | undefined;

  get aborted(): boolean { return this.why !== undefined; }
  get reason(): Error | undefined { return this.why; }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.why !== undefined) return;
    (this.listeners ??= []).push(listener);
  }

  abort(reason: Error): void {
    if (this.why !== undefined) return;
    this.why = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const l of listeners) l();
  }
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
export function abortReason(signal: { readonly reason: unknown }): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new EnsembleError('request aborted', 'cancelled');
}
