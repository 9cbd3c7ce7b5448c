import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { apiKeyGuard } from '../../src/lambda/api-key.js';

/** A tiny app behind the guard that counts how often its handlers ran. */
function guarded(key: string | undefined) {
  const app = new Hono();
  let ran = 0;
  const guard = apiKeyGuard(key);
  app.use('*', async (c, next) => guard(c) ?? next());
  app.all('*', (c) => { ran++; return c.json({ ok: true }); });
  return { app, ran: () => ran };
}

const get = (app: Hono, path: string, headers: Record<string, string> = {}) => app.request(path, { headers });

describe('apiKeyGuard', () => {
  it('lets the key through as x-api-key or as a Bearer token (any case, surrounding spaces)', async () => {
    const { app, ran } = guarded('s3cret');
    expect((await get(app, '/v2/models/demo', { 'x-api-key': 's3cret' })).status).toBe(200);
    expect((await get(app, '/v2/models/demo', { authorization: 'Bearer s3cret' })).status).toBe(200);
    expect((await get(app, '/v2/models/demo', { authorization: '  bearer   s3cret ' })).status).toBe(200);
    expect(ran()).toBe(3);
  });

  it('answers 401 with a JSON error and WWW-Authenticate, without running the route', async () => {
    const { app, ran } = guarded('s3cret');
    const attempts: Record<string, string>[] = [{}, { 'x-api-key': 's3cre' }, { 'x-api-key': 's3cret ' + 'x' }, { authorization: 'Basic czNjcmV0' }, { authorization: 'Bearer' }];
    for (const headers of attempts) {
      const res = await get(app, '/v2/models/demo/infer', headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(Object.keys(await res.json() as object)).toEqual(['error']);
    }
    expect(ran()).toBe(0);
  });

  it('tells a missing key from a wrong one', async () => {
    const { app } = guarded('s3cret');
    expect(await (await get(app, '/v2')).json()).toEqual({ error: 'missing API key: send it as x-api-key or Authorization: Bearer' });
    expect(await (await get(app, '/v2', { 'x-api-key': 'nope' })).json()).toEqual({ error: 'invalid API key' });
  });

  it('leaves the health probes open, and only them', async () => {
    const { app } = guarded('s3cret');
    expect((await get(app, '/v2/health/live')).status).toBe(200);
    expect((await get(app, '/v2/health/ready')).status).toBe(200);
    expect((await get(app, '/v2/health/readyz')).status).toBe(401);
    expect((await get(app, '/v2/health')).status).toBe(401);
  });

  it('serves nothing but health when no key is configured', async () => {
    for (const key of [undefined, '']) {
      const { app, ran } = guarded(key);
      const res = await get(app, '/v2/models/demo', { 'x-api-key': '' });
      expect(res.status).toBe(503);
      expect((await res.json() as { error: string }).error).toContain('no API key configured');
      expect((await get(app, '/v2/health/live')).status).toBe(200);
      expect(ran()).toBe(1);
    }
  });
});
