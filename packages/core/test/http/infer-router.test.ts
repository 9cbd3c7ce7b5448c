import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { InferRouter } from '../../src/http/infer-router.js';

/** Routes shaped like the gateway's: middleware, a static model path beside `:name` ones, stage models' dotted names. */
function app(router?: InferRouter<never>, extra?: (a: Hono) => void): Hono {
  const a = new Hono({ strict: false, ...(router ? { router } : {}) });
  a.use('*', async (c, next) => { await next(); c.res.headers.set('x-mw', 'seen'); });
  a.get('/v2/models/stats', (c) => c.text('all stats'));
  a.get('/v2/models/:name/stats', (c) => c.text(`stats ${c.req.param('name')}`));
  a.post('/v2/models/:name{[^/.]+\\.[^/.]+}/infer', (c) => c.text(`stage ${c.req.param('name')}`));
  extra?.(a);
  a.post('/v2/models/:name/infer', (c) => c.text(`infer ${c.req.param('name')}`));
  a.post('/v2/models/:name/versions/:version/infer', (c) => c.text(`infer ${c.req.param('name')} v${c.req.param('version')}`));
  return a;
}

const PATHS = [
  '/v2/models/demo/infer', '/v2/models/ocr/infer', '/v2/models/demo/infer/', '/v2/models/d%65mo/infer',
  '/v2/models/demo/versions/1/infer', '/v2/models/ocr/versions/2/infer', '/v2/models/stats/infer',
  '/v2/models/demo.branch_a/infer', '/v2/models/a.b.c/infer', '/v2/models/demo/stats', '/v2/models/stats',
];

async function answers(a: Hono, method: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of PATHS) {
    const res = await a.request(p, { method });
    out.push(`${p} ${res.status} ${res.headers.get('x-mw')} ${await res.text()}`);
  }
  return out;
}

describe('InferRouter', () => {
  it("answers every path as Hono's own router does, each infer request with its own name and version, twice over", async () => {
    const ours = app(new InferRouter());
    const theirs = app();
    for (const method of ['POST', 'GET']) {
      const want = await answers(theirs, method);
      expect(await answers(ours, method)).toEqual(want);
      // The second round is answered from the kept handlers.
      expect(await answers(ours, method)).toEqual(want);
    }
    expect(await (await ours.request('/v2/models/ocr/versions/7/infer', { method: 'POST' })).text()).toBe('infer ocr v7');
  });

  it('searches every infer path when another route takes some names only', async () => {
    const special = (a: Hono) => { a.post('/v2/models/special/infer', (c) => c.text('special')); };
    const ours = app(new InferRouter(), special);
    const theirs = app(undefined, special);
    expect(await (await ours.request('/v2/models/demo/infer', { method: 'POST' })).text()).toBe('infer demo');
    expect(await (await ours.request('/v2/models/special/infer', { method: 'POST' })).text()).toBe(await (await theirs.request('/v2/models/special/infer', { method: 'POST' })).text());
  });
});
