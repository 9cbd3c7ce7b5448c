import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { EnsembleError, MethodNotAllowedError, NotServingError, OverloadedError, UnavailableError, UnsupportedEncodingError, clip, toEnsembleError, type ErrorCode } from '../errors.js';

const STATUS: Record<ErrorCode, number> = {
  invalid_input: 400,
  usage: 400,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported_encoding: 415,
  method_not_allowed: 405,
  overloaded: 429,
  // nginx's convention for "client went away": no one is listening, but the run record stays honest.
  cancelled: 499,
  internal: 500,
  stage_failed: 500,
  invalid_manifest: 500,
  // Not 5xx: nothing is broken and a retry would get the same output; not 400: the request itself was valid.
  output_rejected: 422,
  bad_gateway: 502,
  not_ready: 503,
  timeout: 504,
};

export function httpStatus(code: ErrorCode): number {
  return STATUS[code];
}

/** What an error answers over HTTP. */
export interface HttpError {
  status: number;
  error: EnsembleError;
}

export function httpError(err: unknown): HttpError {
  // Hono's own exceptions already say which status they mean.
  if (err instanceof HTTPException && !(err instanceof EnsembleError)) {
    return { status: err.status, error: toEnsembleError(err) };
  }
  const error = toEnsembleError(err);
  return { status: httpStatus(error.code), error };
}

/**
 * `{ "error": message }` with the error's status (Retry-After when overloaded).
 * A 5xx is ours to fix, so it is logged here, once, with its stack and causes;
 * a 4xx is the caller's and only its answer says so.
 */
export function errorResponse(c: Context, h: HttpError): Response {
  const { status, error } = h;
  const headers: Record<string, string> = {};
  if (error instanceof UnavailableError) headers['retry-after'] = String(error.retryAfterSeconds);
  else if (error instanceof UnsupportedEncodingError) headers['accept-encoding'] = error.accepted.join(', ');
  else if (error instanceof MethodNotAllowedError) headers.allow = error.allow.join(', ');
  else if (error.code === 'overloaded') headers['retry-after'] = String(error instanceof OverloadedError ? error.retryAfterSeconds : 1);
  // A refusal to let a backlog drain is expected under load, and whoever refuses logs it once, not per request.
  // Nor is a pipeline that is loading, failed to load or unloaded: its 503 says so, and a stack per request would
  // bury the log (a stage that is not ready is logged).
  if (status >= 500 && !(error instanceof UnavailableError) && !(error instanceof NotServingError)) console.error(`[ensemble] ${c.req.method} ${c.req.path} answered ${status}:`, error);
  return c.json({ error: clip(error.message, 4_000) }, status as 500, headers);
}
