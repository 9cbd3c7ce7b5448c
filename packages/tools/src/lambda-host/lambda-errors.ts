/**
 * Lambda's own limits and answers, as the AWS SDK expects to read them: a
 * service error is an HTTP status, an `x-amzn-ErrorType` header and a JSON
 * body; a function error is a 200 with `X-Amz-Function-Error` and the
 * runtime's error document as the payload.
 */
import type { FunctionErrorDoc } from './types.js';

/** Synchronous Invoke: request and response payload limits, in bytes, as Lambda counts them. */
export const INVOKE_REQUEST_LIMIT = 6_291_456;
export const INVOKE_RESPONSE_LIMIT = 6_291_556;
/** Lambda gives a function's init phase 10 s before it retries init inside the first invoke. */
export const INIT_LIMIT_MS = 10_000;

export interface ServiceError {
  status: number;
  type: string;
  body: Record<string, unknown>;
}

export function functionNotFound(arn: string): ServiceError {
  return { status: 404, type: 'ResourceNotFoundException', body: { Type: 'User', Message: `Function not found: ${arn}` } };
}

export type ThrottleReason = 'ReservedFunctionConcurrentInvocationLimitExceeded' | 'ConcurrentInvocationLimitExceeded';

export function throttled(reason: ThrottleReason): ServiceError {
  return { status: 429, type: 'TooManyRequestsException', body: { Reason: reason, Type: 'User', message: 'Rate Exceeded.' } };
}

export function requestTooLarge(): ServiceError {
  return {
    status: 413, type: 'RequestTooLargeException',
    body: { Type: 'User', message: `Request must be smaller than ${INVOKE_REQUEST_LIMIT} bytes for the InvokeFunction operation` },
  };
}

export function invalidJson(detail: string): ServiceError {
  return { status: 400, type: 'InvalidRequestContentException', body: { Type: 'User', message: `Could not parse request body into json: ${detail}` } };
}

export function invalidParameter(message: string): ServiceError {
  return { status: 400, type: 'InvalidParameterValueException', body: { Type: 'User', message } };
}

export function unknownOperation(method: string, path: string): ServiceError {
  return { status: 404, type: 'UnknownOperationException', body: { Type: 'User', message: `Unknown operation ${method} ${path}` } };
}

export function timedOut(requestId: string, seconds: number): FunctionErrorDoc {
  return { errorType: 'Sandbox.Timedout', errorMessage: `RequestId: ${requestId} Error: Task timed out after ${seconds.toFixed(2)} seconds` };
}

export function runtimeExited(requestId: string, code: number | null, signal: string | null): FunctionErrorDoc {
  const how = signal ? `signal: ${signal === 'SIGKILL' ? 'killed' : signal}` : `exit status ${code ?? 0}`;
  return { errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${requestId} Error: Runtime exited with error: ${how}` };
}

export function responseTooLarge(bytes: number): FunctionErrorDoc {
  return {
    errorType: 'Function.ResponseSizeTooLarge',
    errorMessage: `Response payload size (${bytes} bytes) exceeded maximum allowed payload size (${INVOKE_RESPONSE_LIMIT} bytes).`,
  };
}
