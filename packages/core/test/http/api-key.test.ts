import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { apiKeyAccess, apiKeyGuard, parseApiKeys } from '../../src/http/api-key.js';

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

describe('parseApiKeys', () => {
  it('reads one key for every pipeline and keys scoped to pipelines', () => {
    expect(parseApiKeys('main', ' k1=demo,ocr ; k2=* ;')).toEqual([
      { key: 'main', pipelines: '*' },
      { key: 'k1', pipelines: new Set(['demo', 'ocr']) },
      { key: 'k2', pipelines: '*' },
    ]);
    // A base64 key keeps its padding: the key ends at the last '='.
    expect(parseApiKeys(undefined, 'YWJj==demo')).toEqual([{ key: 'YWJj=', pipelines: new Set(['demo']) }]);
    expect(parseApiKeys('', '')).toEqual([]);
  });

  it('refuses an entry without pipelines, never showing the key', () => {
    for (const bad of ['secret', 'secret=', '=demo']) {
      const err = (() => { try { parseApiKeys(undefined, bad); } catch (e) { return e as Error; } })();
      expect(err?.message, bad).toMatch(/^ENSEMBLE_API_KEYS: .* is not <key>=<pipeline>/);
      expect(err?.message).not.toContain('secret');
    }
  });
});

describe('apiKeyAccess with scoped keys', () => {
  function app() {
    const access = apiKeyAccess(parseApiKeys(undefined, 'k1=demo;k2=*'), { required: true });
    const a = new Hono();
    a.use('*', async (c, next) => access.guard!(c) ?? next());
    a.get('/v2/models', (c) => c.json({ models: ['demo', 'ocr'].filter((n) => access.visible(c, n)) }));
    a.all('*', (c) => c.json({ ok: true }));
    return a;
  }

  it("answers 403 on another pipeline's routes and lists only the key's pipelines", async () => {
    const a = app();
    expect((await get(a, '/v2/models/demo/infer', { 'x-api-key': 'k1' })).status).toBe(200);
    for (const path of ['/v2/models/ocr', '/v2/models/ocr/ready', '/v2/models/ocr/versions/1/infer', '/v2/models/ocr/runs', '/v2/models/%6Fcr/infer']) {
      const res = await get(a, path, { 'x-api-key': 'k1' });
      expect(res.status, path).toBe(403);
      expect(await res.json()).toEqual({ error: "this API key may not use model 'ocr'" });
    }
    expect(await (await get(a, '/v2/models', { 'x-api-key': 'k1' })).json()).toEqual({ models: ['demo'] });
    expect(await (await get(a, '/v2/models', { 'x-api-key': 'k2' })).json()).toEqual({ models: ['demo', 'ocr'] });
    expect((await get(a, '/v2/models/ocr/infer', { authorization: 'Bearer k2' })).status).toBe(200);
    expect((await get(a, '/v2/models/ocr', { 'x-api-key': 'k3' })).status).toBe(401);
  });

  it('lets everything through on a local server without keys', async () => {
    const access = apiKeyAccess([], { required: false });
    const a = new Hono();
    expect(access.guard).toBeUndefined();
    a.all('*', (c) => c.json({ ok: access.visible(c, 'ocr') }));
    expect(await (await get(a, '/v2/models/ocr')).json()).toEqual({ ok: true });
  });
});
