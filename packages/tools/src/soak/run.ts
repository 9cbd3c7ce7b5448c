import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import { buildIfNeeded } from '../pipelines/build.js';
import { fuzzCases } from './fuzz.js';
import { freePort, GatewayProcess } from './gateway.js';
import { demoLoad, emptyTally, missingRecords, send, stallProbe, statusKey, type LoadTally } from './traffic.js';
import type { PhaseResult, SoakOptions } from './types.js';

const BEGIN = '<!-- soak:begin (written by npm run soak) -->';
const END = '<!-- soak:end -->';

/**
 * The reliability suite: the demo pipeline served by a real `ensemble serve`
 * process (its two branches in worker processes, so there are workers to
 * kill), under sustained load, worker and gateway kills, SIGTERM and a
 * fuzzer. Every phase is bounded in requests and time and sends traffic to
 * 127.0.0.1 only.
 */
export async function runSoak(opts: SoakOptions): Promise<PhaseResult[]> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const seconds = opts.seconds ?? 15;
  const work = await mkdtemp(path.join(tmpdir(), 'ensemble-soak-'));
  const modelsDir = path.join(work, 'models');
  await soakModels(opts.root, modelsDir);
  const gw = new GatewayProcess(opts.root, path.join(work, 'data'), modelsDir, await freePort());
  const results: PhaseResult[] = [];
  try {
    log('soak: starting the gateway');
    await gw.start();
    results.push(await loadPhase(gw, log, 'sustained', `c=${opts.concurrency ?? 64} for ${seconds * 2} s`, { seconds: seconds * 2, concurrency: opts.concurrency ?? 64 }));
    results.push(await loadPhase(gw, log, 'worker kill -9', `c=16, a stage worker SIGKILLed every ${Math.max(2, Math.round(seconds / 4))} s`, {
      seconds, concurrency: 16,
      during: async (stopped) => {
        let killed = 0;
        while (!stopped()) {
          await sleep(Math.max(2, Math.round(seconds / 4)) * 1000);
          const pids = gw.workerPids();
          if (stopped() || !pids.length) continue;
          try { process.kill(pids[killed % pids.length], 'SIGKILL'); killed++; } catch { /* already gone */ }
        }
        return [`${killed} workers killed`];
      },
    }));
    results.push(await loadPhase(gw, log, 'gateway kill -9', `c=16, the gateway SIGKILLed after ${Math.round(seconds / 3)} s, restarted on the same folder`, {
      seconds, concurrency: 16,
      during: async () => {
        await sleep(Math.round(seconds / 3) * 1000);
        await gw.stop('SIGKILL');
        await gw.start();
        return ['restarted'];
      },
    }));
    results.push(await loadPhase(gw, log, 'SIGTERM', `c=16, SIGTERM after ${Math.round(seconds / 3)} s, restarted`, {
      seconds, concurrency: 16,
      during: async () => {
        await sleep(Math.round(seconds / 3) * 1000);
        const how = await gw.stop('SIGTERM');
        await gw.start();
        return [`exited with ${how}`];
      },
    }));
    results.push(await fuzzPhase(gw, log, Math.max(300, opts.fuzz ?? 400)));
  } finally {
    await gw.stop('SIGTERM');
    await rm(work, { recursive: true, force: true });
  }
  const table = formatTable(results);
  log(table);
  if (opts.out) await writeBlock(opts.out, `${table}\n\nCommand: \`npm run soak\` on ${new Date().toISOString()}.`);
  return results;
}

/**
 * The demo, with its branches in worker processes instead of the gateway (so kill -9 has workers to
 * hit): its manifest, with the stage module and weights pointed back at models/demo.
 */
async function soakModels(root: string, modelsDir: string): Promise<void> {
  const demoDir = path.join(root, 'models', 'demo');
  const manifest = await loadManifest(path.join(demoDir, 'pipeline.yaml'));
  await buildIfNeeded(manifest);
  const yaml = (await readFile(manifest.file, 'utf8'))
    .replace(/isolation: inline/g, 'isolation: process')
    .replace(/^(\s*(?:-\s*)?module:\s*)(\S+)\s*$/gm, (_all, key: string, rel: string) => `${key}${path.join(demoDir, rel)}`)
    .replace(/(source:\s*)([^,}\s]+)/g, (all, key: string, rel: string) => (rel.startsWith('/') ? all : `${key}${path.join(demoDir, rel)}`));
  await mkdir(path.join(modelsDir, 'demo'), { recursive: true });
  await writeFile(path.join(modelsDir, 'demo', 'pipeline.yaml'), yaml);
}

interface LoadPhaseOptions {
  seconds: number;
  concurrency: number;
  /** Runs beside the load; returns notes for the table. */
  during?: (stopped: () => boolean) => Promise<string[]>;
}

async function loadPhase(gw: GatewayProcess, log: (s: string) => void, name: string, what: string, o: LoadPhaseOptions): Promise<PhaseResult> {
  log(`soak: ${name} (${what})`);
  const crashesBefore = gw.crashes.length;
  const rssBeforeMb = gw.rssMb();
  const tally: LoadTally = emptyTally();
  const probe = stallProbe(gw.url);
  const end = Date.now() + o.seconds * 1000;
  const stopped = () => Date.now() >= end;
  const [notes] = await Promise.all([
    o.during?.(stopped) ?? Promise.resolve([]),
    demoLoad(gw.url, { concurrency: o.concurrency, maxRequests: 2_000_000, stop: stopped, seed: name.length, tally }),
  ]);
  const maxStallMs = await probe.stop();
  const rssAfterMb = gw.rssMb();
  const lost = await missingRecords(gw.url, tally.runIds);
  return {
    name, what, requests: tally.requests, statuses: tally.statuses, wrong: tally.wrong,
    recordsChecked: tally.runIds.length, recordsLost: lost, crashes: gw.crashes.length - crashesBefore,
    serverErrorsForClientErrors: 0, maxStallMs, rssBeforeMb, rssAfterMb, notes,
  };
}

async function fuzzPhase(gw: GatewayProcess, log: (s: string) => void, count: number): Promise<PhaseResult> {
  log(`soak: fuzzer (${count} malformed requests)`);
  const crashesBefore = gw.crashes.length;
  const rssBeforeMb = gw.rssMb();
  const probe = stallProbe(gw.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const statuses: Record<number, number> = {};
  const runIds: string[] = [];
  const fivexx = new Map<string, number>();
  const accepted = new Map<string, number>();
  const cases = fuzzCases(count);
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < cases.length) {
      const c = cases[next++];
      const a = await send(agent, gw.url, c.method, c.path, c.body, c.headers);
      const key = statusKey(a);
      statuses[key] = (statuses[key] ?? 0) + 1;
      if (a.runId) runIds.push(a.runId);
      if (a.status >= 500 || a.status === 0) fivexx.set(c.kind, (fivexx.get(c.kind) ?? 0) + 1);
      if (a.status < 400 && a.status !== 0) accepted.set(c.kind, (accepted.get(c.kind) ?? 0) + 1);
    }
  }));
  agent.destroy();
  const alive = (await send(new Agent(), gw.url, 'GET', '/v2/health/live', '')).status === 200;
  const maxStallMs = await probe.stop();
  const notes = [
    ...[...fivexx].map(([k, n]) => `5xx for ${k}: ${n}`),
    ...[...accepted].map(([k, n]) => `accepted (2xx) ${k}: ${n}`),
    alive ? 'alive afterwards' : 'NOT ALIVE afterwards',
  ];
  return {
    name: 'fuzzer', what: `${count} malformed requests (JSON, binary extension, headers, paths)`, requests: count, statuses, wrong: 0,
    recordsChecked: runIds.length, recordsLost: await missingRecords(gw.url, runIds), crashes: gw.crashes.length - crashesBefore,
    serverErrorsForClientErrors: [...fivexx.values()].reduce((a, b) => a + b, 0), maxStallMs, rssBeforeMb, rssAfterMb: gw.rssMb(), notes,
  };
}

const STATUS_NAMES: Record<string, string> = { '-1': 'refused while down', 0: 'cut off' };

export function formatTable(results: readonly PhaseResult[]): string {
  const head = '| phase | what | requests | statuses | wrong answers | records lost (of checked) | crashes | 5xx for client errors | max /v2/health/live wait (bounds the event-loop stall) | RSS before / after | notes |';
  const rows = results.map((r) => `| ${r.name} | ${r.what} | ${r.requests} | ${Object.entries(r.statuses).sort(([a], [b]) => Number(a) - Number(b)).map(([s, n]) => `${STATUS_NAMES[s] ?? s}: ${n}`).join(', ')} | ${r.wrong} | ${r.recordsLost} (of ${r.recordsChecked}) | ${r.crashes} | ${r.serverErrorsForClientErrors} | ${r.maxStallMs} ms | ${r.rssBeforeMb} / ${r.rssAfterMb} MB | ${r.notes.join('; ')} |`);
  return [head, `|${' --- |'.repeat(11)}`, ...rows].join('\n');
}

async function writeBlock(file: string, block: string): Promise<void> {
  let text = '';
  try { text = await readFile(file, 'utf8'); } catch { text = '# Reliability\n'; }
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  const body = `${BEGIN}\n${block}\n${END}`;
  text = a >= 0 && b > a ? text.slice(0, a) + body + text.slice(b + END.length) : `${text.trimEnd()}\n\n## The last soak run\n\n${body}\n`;
  await writeFile(file, text);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
