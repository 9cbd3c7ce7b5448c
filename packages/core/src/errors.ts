/**
 * What went wrong, as a code every layer understands. Only the edges turn a
 * code into a number: the HTTP API into a status (http/errors.ts), the CLI
 * into an exit code (cli/main.ts). Workers and stage functions send the code
 * across the wire as a plain string.
 */
export type ErrorCode =
  /** The caller's input is wrong: dtype, shape, malformed body or payload. */
  | 'invalid_input'
  /** A CLI command was called wrongly (flags, arguments). */
  | 'usage'
  | 'not_found'
  /** The request does not fit the resource's state (cancelling a job that has finished). */
  | 'conflict'
  | 'too_large'
  /** The body is in an encoding (Content-Encoding) the server cannot decode. */
  | 'unsupported_encoding'
  /** The path is served, but not for this method. */
  | 'method_not_allowed'
  /** A queue is full or a function is throttled; retry later. */
  | 'overloaded'
  /** Still loading, failed to load, or shutting down. */
  | 'not_ready'
  | 'timeout'
  /** The caller went away (or aborted) before the answer. */
  | 'cancelled'
  /** A stage failed while running (crash, thrown error, bad model output). */
  | 'stage_failed'
  /** Something we called answered with what we cannot use (a stage function, a spilled payload). */
  | 'bad_gateway'
  /** A pipeline manifest is invalid. */
  | 'invalid_manifest'
  /** The request was well-formed and ran, but its output failed a monitor that rejects: retrying gives the same answer. */
  | 'output_rejected'
  | 'internal';

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'invalid_input', 'usage', 'not_found', 'conflict', 'too_large', 'unsupported_encoding', 'method_not_allowed', 'overloaded', 'not_ready', 'timeout', 'cancelled',
  'stage_failed', 'bad_gateway', 'invalid_manifest', 'output_rejected', 'internal',
]);

/** A code read off the wire (worker message, stage payload); anything unknown is 'internal'. */
export function errorCode(value: unknown): ErrorCode {
  return typeof value === 'string' && CODES.has(value) ? (value as ErrorCode) : 'internal';
}

export class EnsembleError extends Error {
  readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode = 'internal', options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * `text` cut to `max` characters, saying how much was cut: for names and
 * messages a caller controls, echoed into errors, logs and run records.
 */
export function clip(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(${text.length - max} more)`;
}

/** Any thrown value as an EnsembleError: ours as they are, anything else 'internal', with it as the cause. */
export function toEnsembleError(err: unknown): EnsembleError {
  if (err instanceof EnsembleError) return err;
  return new EnsembleError(err instanceof Error ? err.message : String(err), 'internal', { cause: err });
}

/** Bad input from the caller: wrong dtype, shape, malformed body. */
export class BadRequestError extends EnsembleError {
  constructor(message: string, options?: { cause?: unknown }) { super(message, 'invalid_input', options); }
}
export class NotFoundError extends EnsembleError {
  constructor(message: string) { super(message, 'not_found'); }
}
export class ConflictError extends EnsembleError {
  constructor(message: string) { super(message, 'conflict'); }
}
export class PayloadTooLargeError extends EnsembleError {
  constructor(message: string) { super(message, 'too_large'); }
}
/** A Content-Encoding the server does not decode; the answer lists the ones it does (Accept-Encoding). */
export class UnsupportedEncodingError extends EnsembleError {
  readonly accepted: readonly string[];
  constructor(message: string, accepted: readonly string[]) {
    super(message, 'unsupported_encoding');
    this.accepted = accepted;
  }
}
/** A known path asked with a method it does not serve; `allow` becomes the Allow header. */
export class MethodNotAllowedError extends EnsembleError {
  readonly allow: readonly string[];
  constructor(message: string, allow: readonly string[]) {
    super(message, 'method_not_allowed');
    this.allow = allow;
  }
}
/** A queue is full; `retryAfterSeconds` becomes the Retry-After header. */
export class OverloadedError extends EnsembleError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 1) {
    super(message, 'overloaded');
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
export class NotReadyError extends EnsembleError {
  constructor(message: string) { super(message, 'not_ready'); }
}
/** The pipeline asked for is not serving (still loading, failed to load, unloaded): a state, not a fault. */
export class NotServingError extends NotReadyError {}
/** Refused for now, not because of the request (a backlog to drain); `retryAfterSeconds` becomes the Retry-After header. */
export class UnavailableError extends EnsembleError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 1) {
    super(message, 'not_ready');
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
export class TimeoutError extends EnsembleError {
  constructor(message: string) { super(message, 'timeout'); }
}
/** A stage failed while running; `code` is what the stage said it was, when it said. */
export class StageError extends EnsembleError {
  readonly stage: string;
  /**
   * The stage's own run threw on this batch (ONNX Runtime refused its
   * inputs: an index out of range, shapes that do not broadcast), as
   * opposed to a crash, a timeout or the transport failing: run apart, the
   * items of each request in it may fare differently (the batcher does).
   */
  readonly byRun: boolean;
  /** `message` already naming the stage (an item's outcome made from a failed batch's error) is kept as it is. */
  constructor(stage: string, message: string, code: ErrorCode = 'stage_failed', options?: { cause?: unknown; byRun?: boolean }) {
    super(message.startsWith(`stage '${stage}'`) ? message : `stage '${stage}' failed: ${message}`, code, options);
    this.stage = stage;
    this.byRun = options?.byRun ?? false;
  }
}
/** An output failed a monitor whose action is reject (422: the request was fine, what it produced is not served). */
export class OutputRejectedError extends EnsembleError {
  constructor(message: string) { super(message, 'output_rejected'); }
}
/** A manifest is invalid; the message names the file, the stage and the field. */
export class ManifestError extends EnsembleError {
  readonly file: string;
  constructor(file: string, where: string, message: string) {
    super(`${file}: ${where}: ${message}`, 'invalid_manifest');
    this.file = file;
  }
}
