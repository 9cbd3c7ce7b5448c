/**
 * Errors carry their HTTP status so every layer can throw and the HTTP API
 * answers `{ "error": message }` with the right code without a lookup table.
 */
export class EnsembleError extends Error {
  readonly status: number;
  constructor(message: string, status = 500) {
    super(message);
    this.name = new.target.name;
    this.status = status;
  }
}

/** Bad input from the caller: wrong dtype, shape, malformed body. */
export class BadRequestError extends EnsembleError {
  constructor(message: string) { super(message, 400); }
}
export class NotFoundError extends EnsembleError {
  constructor(message: string) { super(message, 404); }
}
export class PayloadTooLargeError extends EnsembleError {
  constructor(message: string) { super(message, 413); }
}
/** A queue is full; `retryAfterSeconds` becomes the Retry-After header. */
export class OverloadedError extends EnsembleError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 1) {
    super(message, 429);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
export class NotReadyError extends EnsembleError {
  constructor(message: string) { super(message, 503); }
}
export class TimeoutError extends EnsembleError {
  constructor(message: string) { super(message, 504); }
}
/** A stage failed while running (crash, thrown error, bad model output). */
export class StageError extends EnsembleError {
  readonly stage: string;
  constructor(stage: string, message: string, status = 500) {
    super(`stage '${stage}' failed: ${message}`, status);
    this.stage = stage;
  }
}
/** A manifest is invalid; the message names the file, the stage and the field. */
export class ManifestError extends EnsembleError {
  readonly file: string;
  constructor(file: string, where: string, message: string) {
    super(`${file}: ${where}: ${message}`, 500);
    this.file = file;
  }
}
