import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { assertLoopback, runLoad, runLoadInChild } from '../../src/bench/load.js';

interface Counting { url: string; seen: () => number; bodies: string[]; maxInFlight: () => number; close: () => Promise<void> }

/** Answers 200 with a body, or 500 for every `failEvery`-th request, after `delayMs`. */
async function countingServer(opts: { delayMs?: number; failEvery?: number } = {}): Promise<Counting> {
  let n = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    const i = ++n;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      bodies.push(body);
      setTimeout(() => {
        inFlight--;
        const fail = opts.failEvery !== undefined && i % opts.failEvery === 0;
        res.writeHead(fail ? 500 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ i }));
      }, opts.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, seen: () => n, bodies, maxInFlight: () => maxInFlight,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe('load generator', () => {
  const servers: Counting[] = [];
  afterEach(async () => { for (const s of servers.splice(0)) await s.close(); });

  it('sends exactly the requests asked for (plus warm-up), counts statuses and times the successes', async () => {
    const s = await countingServer({ failEvery: 5 });
    servers.push(s);
    const r = await runLoad({
      url: s.url, concurrency: 4, maxRequests: 50, maxDurationMs: 30_000, warmupRequests: 5,
      requests: [{ path: '/a', body: 'one' }, { path: '/b', body: 'two' }],
    });
    expect(s.seen()).toBe(55);
    expect(r.sent).toBe(50);
    expect(r.ok + r.failed).toBe(50);
    expect(r.statuses['200'] + r.statuses['500']).toBe(50);
    expect(r.failed).toBe(r.statuses['500']);
    // 55 requests, every 5th fails: 11 failures, some of them in the warm-up.
    expect(r.failed).toBeGreaterThanOrEqual(10);
    expect(r.latency.count).toBe(r.ok);
    expect(r.errors[0]).toBe('HTTP 500');
    expect(r.latency.p50).toBeLessThanOrEqual(r.latency.p99);
    expect(r.throughput).toBeGreaterThan(0);
    // Bodies are cycled in order.
    expect(new Set(s.bodies)).toEqual(new Set(['one', 'two']));
    expect(s.maxInFlight()).toBeLessThanOrEqual(4);
  });

  it('keeps the asked concurrency in flight', async () => {
    const s = await countingServer({ delayMs: 30 });
    servers.push(s);
    const r = await runLoad({ url: s.url, concurrency: 8, maxRequests: 32, maxDurationMs: 30_000, requests: [{ path: '/', body: '{}' }] });
    expect(r.ok).toBe(32);
    expect(s.maxInFlight()).toBe(8);
    // A latency covers the whole round trip, the server's 30 ms wait included.
    expect(r.latency.min).toBeGreaterThanOrEqual(25);
  });

  it('stops at the time cap long before the request cap', async () => {
    const s = await countingServer({ delayMs: 50 });
    servers.push(s);
    const r = await runLoad({ url: s.url, concurrency: 2, maxRequests: 10_000, maxDurationMs: 300, requests: [{ path: '/', body: '' }] });
    // Each connection sends until 300 ms have passed: about 6 requests each, the last one finishing after the cap.
    expect(r.sent).toBeLessThan(30);
    expect(r.sent).toBeGreaterThanOrEqual(2);
    expect(s.seen()).toBe(r.sent);
  });

  it('reports connection errors as failures instead of throwing', async () => {
    const s = await countingServer();
    const url = s.url;
    await s.close();
    const r = await runLoad({ url, concurrency: 2, maxRequests: 6, maxDurationMs: 5000, requests: [{ path: '/', body: '' }] });
    expect(r.sent).toBe(6);
    expect(r.ok).toBe(0);
    expect(r.statuses.error).toBe(6);
    expect(r.latency.count).toBe(0);
  });

  it('runs in a child process with the same accounting', async () => {
    const s = await countingServer();
    servers.push(s);
    const r = await runLoadInChild({ url: s.url, concurrency: 3, maxRequests: 20, maxDurationMs: 20_000, requests: [{ path: '/', body: new TextEncoder().encode('bytes') }] });
    expect(r.sent).toBe(20);
    expect(r.ok).toBe(20);
    expect(s.seen()).toBe(20);
    expect(s.bodies.every((b) => b === 'bytes')).toBe(true);
  });

  it('sends only to loopback addresses', async () => {
    expect(() => assertLoopback('http://10.0.0.1:8080')).toThrow(/only http:\/\/127/);
    expect(() => assertLoopback('http://example.com')).toThrow(/only http/);
    expect(() => assertLoopback('https://127.0.0.1')).toThrow(/only http/);
    expect(assertLoopback('http://127.0.0.1:1').port).toBe('1');
    expect(assertLoopback('http://[::1]:80/').hostname).toBe('[::1]');
    await expect(runLoad({ url: 'http://192.168.1.1', concurrency: 1, maxRequests: 1, maxDurationMs: 10, requests: [{ path: '/', body: '' }] })).rejects.toThrow(/only/);
  });
});
