import { describe, expect, it } from 'vitest';
import { EnsembleError, OverloadedError, StageError, errorCode, toEnsembleError } from '../src/errors.js';

describe('EnsembleError', () => {
  it('carries a code, not an HTTP status, and chains its cause', () => {
    const root = new Error('disk full');
    const e = new EnsembleError('could not cache weights', 'internal', { cause: root });
    expect(e.code).toBe('internal');
    expect(e.cause).toBe(root);
    expect('status' in e).toBe(false);
    expect(new EnsembleError('x').code).toBe('internal');
    expect(new OverloadedError('full', 3)).toMatchObject({ code: 'overloaded', retryAfterSeconds: 3 });
    expect(new StageError('detect', 'boom').code).toBe('stage_failed');
    expect(new StageError('detect', 'bad image', 'invalid_input')).toMatchObject({ code: 'invalid_input', message: "stage 'detect' failed: bad image" });
  });
});

describe('toEnsembleError', () => {
  it('keeps ours as they are and wraps anything else as internal, keeping it as the cause', () => {
    const ours = new StageError('s', 'no');
    expect(toEnsembleError(ours)).toBe(ours);
    const foreign = new TypeError('undefined is not a function');
    const wrapped = toEnsembleError(foreign);
    expect(wrapped).toBeInstanceOf(EnsembleError);
    expect(wrapped).toMatchObject({ code: 'internal', message: 'undefined is not a function' });
    expect(wrapped.cause).toBe(foreign);
    expect(toEnsembleError('plain')).toMatchObject({ code: 'internal', message: 'plain' });
  });
});

describe('errorCode', () => {
  it('reads a code off the wire, anything unknown as internal', () => {
    expect(errorCode('overloaded')).toBe('overloaded');
    expect(errorCode('teapot')).toBe('internal');
    expect(errorCode(429)).toBe('internal');
    expect(errorCode(undefined)).toBe('internal');
  });
});
