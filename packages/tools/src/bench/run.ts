import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { renderChart, type Panel, type Series } from './chart.js';
import { finishMachineInfo, machineInfo } from './machine.js';
import { keepHandWritten, renderMarkdown, textTable, type Report } from './report.js';
import { runMemoryScenario } from './scenarios/memory.js';
import { runOcrScenario } from './scenarios/ocr.js';
import { runOcrLambdaScenario } from './scenarios/ocr-lambda.js';
import { runPipelinedScenario } from './scenarios/pipelined.js';
import { runTinyScenario } from './scenarios/tiny.js';
import { runJobScenario } from './scenarios/job.js';
import { runColdStartScenario } from './scenarios/coldstart.js';
import type { BenchRow, BenchSettings, ScenarioResult } from './types.js';

export const SCENARIOS = {
  tiny: runTinyScenario,
  ocr: runOcrScenario,
  'ocr-lambda': runOcrLambdaScenario,
  pipelined: runPipelinedScenario,
  job: runJobScenario,
  memory: runMemoryScenario,
  coldstart: runColdStartScenario,
} as const;
export type ScenarioName = keyof typeof SCENARIOS;

export interface BenchOptions {
  scenarios: ScenarioName[];
  quick: boolean;
  /** Markdown report path; the chart goes next to it as <name>.svg. */
  out: string;
  root: string;
  command: string;
  /** Images in the job scenario's job. */
  jobImages?: number;
  log?: (s: string) => void;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

/** Throughput and latency panels for every scenario measured at more than one concurrency. */
export function chartPanels(scenarios: ScenarioResult[]): Panel[] {
  const panels: Panel[] = [];
  for (const s of scenarios) {
    const systems = [...new Set(s.rows.map((r) => r.system))];
    const by = (sys: string) => s.rows.filter((r) => r.system === sys);
    if (new Set(s.rows.map((r) => r.concurrency)).size < 2) continue;
    const unit = s.rows[0].unit;
    const tput: Series[] = [];
    const lat: Series[] = [];
    systems.forEach((sys, i) => {
      const rows: BenchRow[] = by(sys);
      const color = COLORS[i % COLORS.length];
      const reference = rows.length === 1;
      // Legends stay short: the system's name up to its parenthesis.
      const short = sys.replace(/\s*\(.*$/, '');
      const name = reference ? `${short}${/sequential/.test(short) ? '' : ', sequential'}` : short;
      tput.push({ name, color, reference, points: rows.map((r) => [r.concurrency, r.throughput]) });
      lat.push({ name: `${name} p50`, color, reference, points: rows.map((r) => [r.concurrency, r.p50Ms]) });
      if (!reference) lat.push({ name: `${short} p99`, color, dashed: true, points: rows.map((r) => [r.concurrency, r.p99Ms]) });
    });
    panels.push({ title: `${s.name}: throughput`, yLabel: unit, series: tput });
    panels.push({ title: `${s.name}: latency`, yLabel: 'ms', series: lat });
  }
  return panels;
}

/** `ensemble bench`: run the scenarios, print the table, write the markdown report and the chart. */
export async function runBench(o: BenchOptions): Promise<Report> {
  const log = o.log ?? ((s: string) => console.error(s));
  const settings: BenchSettings = { quick: o.quick, log, root: o.root, jobImages: o.jobImages };
  let machine = machineInfo();
  const started = new Date();
  const t0 = performance.now();
  const results: ScenarioResult[] = [];
  const errors: Report['errors'] = [];
  for (const name of o.scenarios) {
    log(`== ${name}`);
    try {
      results.push(await SCENARIOS[name](settings));
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log(`scenario ${name} failed: ${message}`);
      errors.push({ scenario: name, message });
    }
  }
  machine = finishMachineInfo(machine);
  const out = resolve(o.out);
  const chartFile = join(dirname(out), `${basename(out, extname(out))}.svg`);
  const panels = chartPanels(results);
  const report: Report = {
    command: o.command, startedAt: started.toISOString().replace(/\.\d+Z$/, 'Z'), durationS: (performance.now() - t0) / 1000,
    machine, scenarios: results, errors,
  };
  await mkdir(dirname(out), { recursive: true });
  if (panels.length) {
    await writeFile(chartFile, renderChart(panels, `Ensemble benchmarks (${machine.cores} cores, ${o.quick ? 'quick' : 'full'} run)`));
    report.chart = basename(chartFile);
  }
  const previous = await readFile(out, 'utf8').catch(() => undefined);
  await writeFile(out, keepHandWritten(renderMarkdown(report), previous));
  console.log(textTable(results.flatMap((r) => r.rows)));
  console.log('');
  for (const t of results.flatMap((r) => r.targets)) console.log(`${t.met ? 'met    ' : 'MISSED '} ${t.target}: ${t.measured}`);
  log(`wrote ${o.out}${report.chart ? ` and ${join(dirname(o.out), report.chart)}` : ''}`);
  return report;
}
