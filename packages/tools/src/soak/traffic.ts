import { Agent, request } from 'node:http';
import { demoExpected } from '../../../../models/demo/expected.js';
import { seededRandom } from '../util/random.js';

export interface Answer {
  status: number;
  body: Buffer;
  runId?: string;
  error?: string;
}

/** One request over a keep-alive agent; never rejects (a dead gateway is status 0). */
export function send(agent: Agent, url: string, method: string, path: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<Answer> {
  const u = new URL(url);
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return new Promise((resolve) => {
    const req = request({
      agent, host: u.hostname, port: u.port, method, path, timeout: 60_000,
      headers: { 'content-type': 'application/json', 'content-length': String(bytes.length), ...headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), runId: res.headers['x-ensemble-run-id'] as string | undefined }));
      res.on('error', (e) => resolve({ status: 0, body: Buffer.alloc(0), error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', (e) => resolve({ status: 0, body: Buffer.alloc(0), error: e.message }));
    req.end(bytes);
  });
}

export interface LoadTally {
  requests: number;
  statuses: Record<number, number>;
  wrong: number;
  /** Run ids of every answered request (any status but 404 for an unknown route): each must have its record. */
  runIds: string[];
}

export function emptyTally(): LoadTally {
  return { requests: 0, statuses: {}, wrong: 0, runIds: [] };
}

/**
 * Closed-loop demo traffic: `concurrency` loops, each sending its next
 * request when the last is answered, until `stop()` says so or `maxRequests`
 * went out. Every 200 is checked against the demo's expected numbers.
 */
export async function demoLoad(url: string, opts: { concurrency: number; maxRequests: number; stop: () => boolean; seed: number; tally: LoadTally }): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const rand = seededRandom(opts.seed);
  const { tally } = opts;
  const loop = async () => {
    while (!opts.stop() && tally.requests < opts.maxRequests) {
      const rows = 1 + Math.floor(rand() * 3);
      const x = Array.from({ length: rows * 4 }, () => Math.round((rand() * 8 - 4) * 100) / 100);
      tally.requests++;
      const a = await send(agent, url, 'POST', '/v2/models/demo/infer', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], data: x }] }));
      const key = statusKey(a);
      tally.statuses[key] = (tally.statuses[key] ?? 0) + 1;
      if (a.runId) tally.runIds.push(a.runId);
      if (a.status === 200 && !correct(a.body, x)) tally.wrong++;
      // A refused or failed request backs off a little, as a client honouring Retry-After would (scaled down).
      if (a.status === 0 || a.status >= 500 || a.status === 429) await new Promise((r) => setTimeout(r, 20));
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, loop));
  agent.destroy();
}

/**
 * The HTTP status, or for no answer: -1 when the connection was refused (nothing listening: the
 * gateway is down between a kill and its restart), 0 when a request was cut off mid-way.
 */
export function statusKey(a: Answer): number {
  if (a.status !== 0) return a.status;
  return /ECONNREFUSED/.test(a.error ?? '') ? -1 : 0;
}

function correct(body: Buffer, x: number[]): boolean {
  try {
    const out = (JSON.parse(body.toString('utf8')) as { outputs: { name: string; data: number[] }[] }).outputs.find((o) => o.name === 'y');
    const want = demoExpected(x);
    if (!out || out.data.length !== want.length) return false;
    return out.data.every((v, i) => Math.abs(v - want[i]) <= 1e-4 * Math.max(1, Math.abs(want[i])));
  } catch {
    return false;
  }
}

/** Polls /v2/health/live one request at a time; the longest answer is the phase's event-loop stall (plus HTTP). */
export function stallProbe(url: string): { stop: () => Promise<number> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let running = true;
  let max = 0;
  const done = (async () => {
    while (running) {
      const t0 = performance.now();
      const a = await send(agent, url, 'GET', '/v2/health/live', '');
      // While the gateway is down (killed on purpose) nothing answers: that is not a stall.
      if (a.status === 200) max = Math.max(max, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return { stop: async () => { running = false; await done; agent.destroy(); return Math.round(max * 10) / 10; } };
}

/** Looks every run id up; returns how many have no record (replayed records get a few seconds to land). */
export async function missingRecords(url: string, ids: readonly string[]): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const pass = async (list: readonly string[]): Promise<string[]> => {
    const missing: string[] = [];
    let next = 0;
    const loop = async () => {
      while (next < list.length) {
        const id = list[next++];
        const a = await send(agent, url, 'GET', `/v2/runs/${id}`, '');
        if (a.status !== 200) missing.push(id);
      }
    };
    await Promise.all(Array.from({ length: 16 }, loop));
    return missing;
  };
  let missing = await pass(ids);
  for (let k = 0; missing.length > 0 && k < 5; k++) {
    await new Promise((r) => setTimeout(r, 1000));
    missing = await pass(missing);
  }
  agent.destroy();
  return missing.length;
}
