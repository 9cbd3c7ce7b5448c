import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BadRequestError, EnsembleError, OverloadedError, type ErrorCode } from '../../src/errors.js';
import { errorResponse, httpError, httpStatus } from '../../src/http/errors.js';

afterEach(() => { vi.restoreAllMocks(); });

function appThrowing(err: unknown): Hono {
  const app = new Hono();
  app.get('/x', () => { throw err; });
  app.onError((e, c) => errorResponse(c, httpError(e)));
  return app;
}

describe('httpStatus', () => {
  it('maps every code to the status the API has always answered', () => {
    const expected: Record<ErrorCode, number> = {
      invalid_input: 400, usage: 400, not_found: 404, conflict: 409, too_large: 413, unsupported_encoding: 415, method_not_allowed: 405,
      overloaded: 429, cancelled: 499,
      internal: 500, stage_failed: 500, invalid_manifest: 500, output_rejected: 422, bad_gateway: 502, not_ready: 503, timeout: 504,
    };
    for (const [code, status] of Object.entries(expected)) expect(httpStatus(code as ErrorCode), code).toBe(status);
  });
});

describe('errorResponse', () => {
  it('answers { error } with Retry-After when overloaded, and logs nothing for a 4xx', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const res = await appThrowing(new OverloadedError('queue full', 2)).request('/x');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(await res.json()).toEqual({ error: 'queue full' });
    const bad = await appThrowing(new BadRequestError('wrong dtype')).request('/x');
    expect(bad.status).toBe(400);
    expect(logged).not.toHaveBeenCalled();
  });

  it('logs a 5xx once, with its stack and cause', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const cause = new Error('socket hang up');
    const res = await appThrowing(new EnsembleError('stage function unreachable', 'bad_gateway', { cause })).request('/x');
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ error: 'stage function unreachable' });
    expect(logged).toHaveBeenCalledTimes(1);
    const logged0 = logged.mock.calls[0];
    expect(String(logged0[0])).toContain('GET /x answered 502');
    const err = logged0[1] as EnsembleError;
    expect(err.stack).toContain('stage function unreachable');
    expect(err.cause).toBe(cause);
  });

  it('answers a foreign error as 500, and keeps the status of a Hono HTTPException', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    expect((await appThrowing(new TypeError('oops')).request('/x')).status).toBe(500);
    const res = await appThrowing(new HTTPException(401, { message: 'who are you' })).request('/x');
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'who are you' });
  });
});
