import { Session } from 'node:inspector/promises';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBenchServer } from './bench-server.js';
import { runLoadInChild } from './load.js';
import type { LoadRequest } from './load.js';
import { demoRequests } from './scenarios/tiny.js';
import { summarizeProfile, renderProfileSummary, type CpuProfile } from './cpuprofile.js';
import { fmt, withTempDir } from './util.js';

export interface ProfileOptions {
  root: string;
  /** Where the .cpuprofile goes (open it in Chrome DevTools or speedscope); the summary is printed. */
  out: string;
  concurrency?: number;
  durationMs?: number;
  log?: (s: string) => void;
}

/**
 * The tiny scenario's server under closed-loop load, with V8's sampling
 * profiler on this process (the gateway's: the load generator and the
 * emulators are processes of their own). Returns the summary as markdown.
 */
export async function profileTiny(o: ProfileOptions): Promise<string> {
  const log = o.log ?? ((s: string) => console.error(s));
  return withTempDir('ensemble-profile-tiny-', async (dataDir) => {
    const server = await startBenchServer({ dataDir, modelsDir: join(o.root, 'models'), pipelines: ['demo'], log });
    try {
      return await profileUnderLoad({ ...o, url: server.url, log, settle: () => server.env.runs.flush() });
    } finally {
      await server.close();
    }
  });
}

export interface LoadProfileOptions {
  /** The server to load, in this process. */
  url: string;
  out: string;
  concurrency?: number;
  durationMs?: number;
  /** Awaited after the load, before the CPU time is read (the gateway's run records reaching DynamoDB). */
  settle?: () => Promise<unknown>;
  log?: (s: string) => void;
  /** Says which server the log line is about. */
  label?: string;
  /** What to send (default: the tiny scenario's); the warm-up first, at most `warmRequests` (3000) in `warmMs` (3 s); then at most `maxRequests` under the profiler. */
  requests?: LoadRequest[];
  warmRequests?: number;
  warmMs?: number;
  maxRequests?: number;
}

/**
 * The tiny scenario's requests against a server in this process (warmed
 * first, so the profile is of the steady state, not of the JIT and the first
 * connections), with the sampling profiler on: the .cpuprofile written to
 * `out`, the summary returned. The gateway's profile (profileTiny) and the
 * baseline's (scripts/profile-baseline.ts) are taken the same way.
 */
export async function profileUnderLoad(o: LoadProfileOptions): Promise<string> {
  const log = o.log ?? ((s: string) => console.error(s));
  const concurrency = o.concurrency ?? 64;
  const durationMs = o.durationMs ?? 8000;
  const requests = o.requests ?? demoRequests();
  await runLoadInChild({ url: o.url, requests, concurrency, maxRequests: o.warmRequests ?? 3000, maxDurationMs: o.warmMs ?? 3000 });
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    // 100 us: fine enough for functions of a few microseconds, coarse enough not to cost the server much.
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    const u0 = process.cpuUsage();
    const r = await runLoadInChild({ url: o.url, requests, concurrency, maxRequests: o.maxRequests ?? 1_000_000, maxDurationMs: durationMs });
    await o.settle?.();
    const u = process.cpuUsage(u0);
    const { profile } = await session.post('Profiler.stop') as { profile: CpuProfile };
    await writeFile(o.out, JSON.stringify(profile));
    log(`profiled${o.label ? ` ${o.label}` : ''} c=${concurrency}: ${fmt(r.throughput)} req/s, ${r.ok} ok, ${fmt((u.user + u.system) / 1000 / Math.max(1, r.ok), 3)} ms CPU/req (profiler on); wrote ${o.out}`);
    return renderProfileSummary(summarizeProfile(profile));
  } finally {
    session.disconnect();
  }
}

/** The summary of a .cpuprofile written before (`node --cpu-prof`, or an earlier --profile). */
export async function summarizeProfileFile(file: string): Promise<string> {
  return renderProfileSummary(summarizeProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile));
}
