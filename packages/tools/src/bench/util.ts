import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScanCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { RunningServer } from '../serve/server.js';
import type { LoadResult } from './types.js';
import type { BenchRow } from './types.js';

/** A temporary folder, removed after `fn` whatever happens. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs `fn` with the server, and always closes it. */
export async function withServer<T>(start: () => Promise<RunningServer>, fn: (s: RunningServer) => Promise<T>): Promise<T> {
  const server = await start();
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

/** Rows in the run-records table (a paginated COUNT scan). */
export async function countRunRecords(dynamo: DynamoDBClient, table: string): Promise<number> {
  let n = 0;
  let start: Record<string, never> | undefined;
  for (let page = 0; page < 10_000; page++) {
    const out = await dynamo.send(new ScanCommand({ TableName: table, Select: 'COUNT', ExclusiveStartKey: start }));
    n += out.Count ?? 0;
    start = out.LastEvaluatedKey as Record<string, never> | undefined;
    if (!start) break;
  }
  return n;
}

export function loadRow(scenario: string, system: string, unit: string, r: LoadResult, note?: string): BenchRow {
  const row: BenchRow = {
    scenario, system, concurrency: r.concurrency, throughput: r.throughput, unit,
    p50Ms: r.latency.p50, p99Ms: r.latency.p99, samples: r.ok, failed: r.failed,
  };
  if (note) row.note = note;
  return row;
}

export function ratio(a: number, b: number): number { return b > 0 ? a / b : NaN; }

export function fmt(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(digits);
}

export function failureNote(r: LoadResult): string | undefined {
  if (r.failed === 0) return undefined;
  return `${r.failed} failed: ${Object.entries(r.statuses).filter(([k]) => !k.startsWith('2')).map(([k, v]) => `${k}×${v}`).join(', ')}${r.errors[0] ? ` (${r.errors[0]})` : ''}`;
}

/** Linux's USER_HZ: /proc reports CPU time in these ticks (100 on every mainstream kernel). */
const CLOCK_TICKS = 100;

/** CPU time (user + system) a process has used so far, in ms; undefined where /proc is not there. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Snapshot of this process's CPU and that of some child processes (stage workers), to take the difference of. */
export function cpuSnapshot(pids: Record<string, number | undefined>): () => { self: number; children: Record<string, number> } {
  const t0 = process.cpuUsage();
  const c0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, processCpuMs(p) ?? NaN]));
  return () => {
    const u = process.cpuUsage(t0);
    const children = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, (processCpuMs(p) ?? NaN) - c0[k]]));
    return { self: (u.user + u.system) / 1000, children };
  };
}
