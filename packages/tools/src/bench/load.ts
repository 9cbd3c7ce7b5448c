import { fork } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { EnsembleError } from '@ensemble/core/errors.js';
import { summarize } from './stats.js';
import type { LoadOptions, LoadRequest, LoadResult } from './types.js';

const CHILD_ENTRY = fileURLToPath(new URL('./load-child-entry.mjs', import.meta.url));
const MAX_ERRORS_KEPT = 5;

/** Benchmark traffic goes to this machine only. */
export function assertLoopback(url: string): URL {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const ok = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!ok || u.protocol !== 'http:') throw new EnsembleError(`load generator: only http://127.0.0.0/8, localhost or [::1] are allowed, got ${url}`, 'usage');
  return u;
}

function checkOptions(o: LoadOptions): void {
  assertLoopback(o.url);
  if (!o.requests.length) throw new EnsembleError('load generator: no requests to send', 'usage');
  for (const [k, v] of [['concurrency', o.concurrency], ['maxRequests', o.maxRequests]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new EnsembleError(`load generator: ${k} must be a positive integer, got ${v}`, 'usage');
  }
  if (!(o.maxDurationMs > 0)) throw new EnsembleError(`load generator: maxDurationMs must be positive, got ${o.maxDurationMs}`, 'usage');
}

interface Answer { status: number; error?: string }

/**
 * A closed-loop load generator over keep-alive HTTP/1.1: `concurrency`
 * connections, each sending its next request when the previous one is
 * answered, until `maxRequests` were sent or `maxDurationMs` passed. Bounded
 * both ways, so it always stops by itself.
 */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  checkOptions(opts);
  const base = assertLoopback(opts.url);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency, maxFreeSockets: opts.concurrency });
  const timeoutMs = opts.requestTimeoutMs ?? 60_000;
  const bodies = opts.requests.map((r) => ({ ...r, bytes: typeof r.body === 'string' ? Buffer.from(r.body) : Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength) }));
  let next = 0;

  const send = (r: (typeof bodies)[number]): Promise<Answer> => new Promise((resolve) => {
    const req = httpRequest({
      agent, host: base.hostname.replace(/^\[|\]$/g, ''), port: base.port || 80, method: 'POST', path: r.path,
      headers: { 'content-type': 'application/json', ...r.headers, 'content-length': String(r.bytes.length) },
      timeout: timeoutMs,
    }, (res) => {
      // Read the whole answer: a benchmark that ignores the body measures only the headers.
      res.on('data', () => undefined);
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      res.on('error', (e) => resolve({ status: 0, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ status: 0, error: e.message }));
    req.end(r.bytes);
  });

  try {
    // Warm-up: same concurrency, results thrown away.
    const warm = opts.warmupRequests ?? 0;
    if (warm > 0) {
      let left = warm;
      await Promise.all(Array.from({ length: Math.min(opts.concurrency, warm) }, async () => {
        while (left-- > 0) await send(bodies[next++ % bodies.length]);
      }));
    }

    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    const errors: string[] = [];
    let sent = 0;
    let ok = 0;
    const t0 = performance.now();
    const deadline = t0 + opts.maxDurationMs;
    let lastDone = t0;
    await Promise.all(Array.from({ length: opts.concurrency }, async () => {
      while (sent < opts.maxRequests && performance.now() < deadline) {
        sent++;
        const r = bodies[next++ % bodies.length];
        const start = performance.now();
        const a = await send(r);
        const end = performance.now();
        lastDone = Math.max(lastDone, end);
        const key = a.error ? 'error' : String(a.status);
        statuses[key] = (statuses[key] ?? 0) + 1;
        if (!a.error && a.status >= 200 && a.status < 300) {
          ok++;
          latencies.push(end - start);
        } else if (errors.length < MAX_ERRORS_KEPT) {
          errors.push(a.error ?? `HTTP ${a.status}`);
        }
      }
    }));
    const durationMs = lastDone - t0;
    return {
      concurrency: opts.concurrency, sent, ok, failed: sent - ok, durationMs,
      throughput: durationMs > 0 ? (ok * 1000) / durationMs : 0,
      latency: summarize(latencies), statuses, errors,
    };
  } finally {
    agent.destroy();
  }
}

/**
 * runLoad in a child process, so the client's own CPU (HTTP parsing, JSON)
 * is not taken from the server's event loop when both live on one machine.
 */
export function runLoadInChild(opts: LoadOptions): Promise<LoadResult> {
  checkOptions(opts);
  return new Promise((resolve, reject) => {
    const child = fork(CHILD_ENTRY, ['ensemble:load'], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    let settled = false;
    // The child stops by itself; this is a last resort if it hangs.
    const guard = setTimeout(() => { child.kill('SIGKILL'); finish(new EnsembleError('load generator child did not finish in time')); },
      opts.maxDurationMs + (opts.requestTimeoutMs ?? 60_000) * 2 + 30_000);
    const finish = (r: LoadResult | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      if (r instanceof Error) reject(r); else resolve(r);
    };
    child.on('message', (m: { type: 'result'; result: LoadResult } | { type: 'error'; message: string }) => {
      if (m.type === 'result') finish(m.result); else finish(new EnsembleError(`load generator: ${m.message}`));
      child.disconnect();
    });
    child.on('error', (e) => finish(e));
    child.on('exit', (code) => finish(new EnsembleError(`load generator child exited (code ${code}) without a result`)));
    child.send({ type: 'run', options: opts });
  });
}

export type { LoadOptions, LoadRequest, LoadResult };
