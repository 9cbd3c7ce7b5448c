import type { MachineInfo } from './machine.js';
import type { BenchRow, ScenarioResult } from './types.js';
import { fmt } from './util.js';
import { energyAssumptions } from './energy.js';

export interface Report {
  command: string;
  startedAt: string;
  durationS: number;
  machine: MachineInfo;
  scenarios: ScenarioResult[];
  /** Scenarios that failed to run, with why. */
  errors: { scenario: string; message: string }[];
  /** File name of the chart, relative to the markdown. */
  chart?: string;
}

const HEAD = ['scenario', 'system', 'concurrency', 'throughput', 'p50 ms', 'p99 ms', 'CER', 'samples', 'notes'];

function cells(r: BenchRow): string[] {
  return [
    r.scenario, r.system, String(r.concurrency), `${fmt(r.throughput)} ${r.unit}`, fmt(r.p50Ms), fmt(r.p99Ms),
    r.cer === undefined ? '' : `${(r.cer * 100).toFixed(2)}%`, String(r.samples) + (r.failed ? ` (+${r.failed} failed)` : ''), r.note ?? '',
  ];
}

/** The results as a plain-text table for the terminal. */
export function textTable(rows: BenchRow[]): string {
  const all = [HEAD, ...rows.map(cells)];
  const widths = HEAD.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  const right = new Set([2, 3, 4, 5, 6, 7]);
  return all.map((r, i) => {
    const line = r.map((c, j) => (right.has(j) ? c.padStart(widths[j]) : c.padEnd(widths[j]))).join('  ').trimEnd();
    return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
  }).join('\n');
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function markdownTable(header: string[], rows: string[][]): string {
  return [
    `| ${header.map(mdEscape).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(mdEscape).join(' | ')} |`),
  ].join('\n');
}

/** docs/benchmarks.md: the command, the machine, the targets, each scenario's table and notes, the chart. */
export function renderMarkdown(r: Report): string {
  const m = r.machine;
  const out: string[] = [
    '# Benchmarks',
    '',
    `Written by \`${r.command}\` on ${r.startedAt} (${Math.round(r.durationS)} s). Run it again to refresh this page; nothing above its hand-written part (the sections after "Running it") is edited by hand.`,
    '',
    '## Machine',
    '',
    markdownTable(['', ''], [
      ['CPU', `${m.cpu}, ${m.cores} cores`],
      ['memory', `${m.memoryGiB} GiB`],
      ['OS', m.os],
      ['runtime', `Node ${m.node.replace(/^v/, '')}, ${m.onnxruntime}`],
      ['load average (1 min) at start / end', `${m.loadAvg.start.toFixed(2)} / ${m.loadAvg.end?.toFixed(2) ?? '-'}${m.loadAvg.start > m.cores * 0.5 ? ' — other work was running; numbers are noisier and lower than on an idle machine' : ''}`],
    ]),
    '',
    'All traffic is on 127.0.0.1; every load loop is bounded in requests and time.',
    '',
  ];
  const targets = r.scenarios.flatMap((s) => s.targets);
  if (targets.length) {
    out.push('## Targets', '', markdownTable(['target', 'measured', 'met'], targets.map((t) => [t.target, t.measured, t.met ? 'yes' : '**no**'])), '');
  }
  for (const e of r.errors) out.push(`**Scenario ${e.scenario} did not run:** ${e.message}`, '');
  if (r.chart) out.push(`![Throughput and latency against concurrency](${r.chart})`, '');
  for (const s of r.scenarios) {
    out.push(`## ${s.title}`, '', markdownTable(HEAD, s.rows.map(cells)), '');
    for (const n of s.notes) out.push(n, '');
  }
  out.push(
    '## Running it',
    '',
    '```',
    'npm run bench                          # every scenario, a few minutes on 2 cores',
    'npm run bench -- --quick               # fewer requests per level, about a minute',
    'npm run bench -- --scenario ocr        # one scenario (tiny, ocr, ocr-lambda, pipelined, job, memory, coldstart); repeatable',
    'npx ensemble bench --out /tmp/b.md     # write the report (and b.svg) elsewhere',
    'npx ensemble bench --profile t.cpuprofile  # the tiny pipeline at c=64 under the CPU profiler: self time by part and function',
    'npx ensemble bench --summarize t.cpuprofile  # the same tables for any .cpuprofile (node --cpu-prof)',
    'npx tsx scripts/profile-baseline.ts    # the hand-written baseline under the same load and profiler, to set beside it',
    'npx tsx scripts/profile-ocr.ts         # the gateway under OCR load at c=16 (CONCURRENCY=N) with the profiler: its CPU per image by part',
    'node --perf-basic-prof --import tsx scripts/perf-gateway.ts  # the same under Linux perf (apt-get install linux-perf): CPU only, every thread',
    'WORKERS=1 NODE_OPTIONS=--perf-basic-prof node --import tsx scripts/perf-gateway.ts  # and the stage workers, one report per process',
    'npx tsx scripts/session-create.ts <model.onnx>  # InferenceSession.create in fresh processes, glibc\'s malloc defaults against the stage functions\' settings',
    'npx tsx scripts/ocr-levels.ts          # OCR at levels in any order (LEVELS=4,16,4), gateway CPU and GCs per image',
    'node scripts/detect-pre-first-calls.mjs dist/lambda/OcrDetect 640 480  # a fresh process\'s first detect-pre calls (after npm run package)',
    'node scripts/intra-op-threads.mjs <model.onnx> 1,3,160,640  # what a second intra-op thread buys one session.run',
    'npx tsx scripts/answer-size.ts         # a stage function\'s check of its answer against Invoke\'s 6 MB: written out vs counted',
    'npx tsx scripts/tiny-parts.ts          # the tiny scenario with run records, the journal only, none: CPU per request and sustained req/s',
    'npx tsx scripts/run-record-sink.ts     # the run record writer alone against the DynamoDB emulator: records/s and CPU per record',
    'npx tsx scripts/malformed-json.ts      # what a 33 MB malformed JSON body costs the event loop to refuse',
    '```',
    '',
    'Each scenario starts what it needs (the real server with a temporary data folder, the baselines) and stops it. '
    + 'Numbers move with what else the machine is doing: the load average above says how busy it was, and the CPU time per request or image '
    + '(in the notes) is the figure that does not. ' + energyAssumptions(),
    '',
    'Per-stage settings come from `ensemble tune <pipeline>`: it profiles each ONNX stage alone (batch sizes 1 to 64, every split of the cores into '
    + 'instances x threads) on the inputs the stage really receives from sample requests, and proposes batch size, max delay and instances '
    + 'for the most throughput within a p99 budget, e.g. `npx ensemble tune ocr --p99 1s --request page.png --write`.',
    '',
  );
  return `${out.join('\n').trimEnd()}\n`;
}

/**
 * The line after which a report file is written by hand (how a number moved, the profile that explained it):
 * a new run rewrites everything above it and keeps everything from it on.
 */
export const HAND_WRITTEN_MARKER = '<!-- Everything below this line is written by hand; npm run bench keeps it. -->';

/** `rendered` followed by the hand-written part of `previous` (the file being replaced), if it has one. */
export function keepHandWritten(rendered: string, previous: string | undefined): string {
  const at = previous?.indexOf(HAND_WRITTEN_MARKER) ?? -1;
  if (!previous || at < 0) return rendered;
  return `${rendered}\n${previous.slice(at).trimEnd()}\n`;
}
