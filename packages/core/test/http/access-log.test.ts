import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { accessLog, noteRequest } from '../../src/http/access-log.js';

function app(lines: string[]): Hono {
  const a = new Hono();
  a.use('*', accessLog((l) => lines.push(l)));
  a.use('/private/*', async (c, next) => (c.req.header('x-key') === 'k' ? next() : c.json({ error: 'no' }, 401)));
  a.get('/ok', (c) => { noteRequest(c, { runId: 'r1', pipeline: 'p' }); return c.text('fine'); });
  a.get('/boom', () => { throw new Error('broken'); });
  a.get('/private/x', (c) => c.text('secret'));
  a.onError((_e, c) => c.json({ error: 'internal' }, 500));
  return a;
}

describe('accessLog', () => {
  it('writes one line per request with the status the client got, thrown errors and refusals included', async () => {
    const lines: string[] = [];
    const a = app(lines);
    await a.request('/ok');
    await a.request('/boom');
    await a.request('/private/x');
    await a.request('/missing?q=1', { method: 'DELETE' });
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^GET \/ok 200 \d+\.\dms run=r1 pipeline=p$/);
    expect(lines[1]).toMatch(/^GET \/boom 500 \d+\.\dms$/);
    expect(lines[2]).toMatch(/^GET \/private\/x 401 \d+\.\dms$/);
    expect(lines[3]).toMatch(/^DELETE \/missing 404 \d+\.\dms$/);
  });
});
