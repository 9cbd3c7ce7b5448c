import { basename, isAbsolute, relative, resolve } from 'node:path';
import type { Command } from '../args.js';
import { int, str, UsageError } from '../args.js';
import { decomposeModel, type DecomposeReport } from '../../decompose/decompose.js';
import { pipelineName } from '../../decompose/manifest-fragment.js';
import { checkDimNames, parseDims } from '../../decompose/samples.js';
import type { CutPlan } from '../../decompose/types.js';
import { inspectModel } from '../../onnx/inspect.js';
import { formatBytes } from '../../util/progress.js';

const thousands = (n: number): string => n.toLocaleString('en-US');
const ms = (n: number): string => n.toFixed(n < 10 ? 2 : 1);

/** Relative to the working folder when inside it, else absolute. */
function shortPath(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : resolve(file);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 || c === r.length - 1 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd()).join('\n');
}

function printReport(report: DecomposeReport, modelPath: string): void {
  const whole = inspectModel(modelPath);
  const { cut, timing } = report;
  const totalFlops = cut.stages.reduce((a, s) => a + s.estimatedFlops, 0) || 1;
  const rows: string[][] = [['stage', 'nodes', 'params', 'weights', 'est. cost', 'est. (ms)', 'time (ms)', 'reads']];
  // The estimate's share of the measured whole model: what the balancing expected each stage to take.
  const estimated = (flops: number): string => (timing ? ms((timing.wholeMs * flops) / totalFlops) : '-');
  cut.stages.forEach((s, i) => {
    rows.push([
      s.name,
      String(s.nodeCount),
      thousands(s.parameterCount),
      formatBytes(s.weightBytes),
      `${((100 * s.estimatedFlops) / totalFlops).toFixed(1)}%`,
      estimated(s.estimatedFlops),
      timing ? ms(timing.stageMs[i]) : '-',
      s.inputs.map((t) => (t.from === 'input' ? t.name : `${t.name} (stage ${t.from})`)).join(', '),
    ]);
  });
  rows.push(['whole model', String(whole.nodeCount), thousands(whole.parameterCount), formatBytes(whole.weightBytes), '100%', estimated(totalFlops), timing ? ms(timing.wholeMs) : '-', '']);
  console.log(table(rows));
  if (timing) {
    const shapes = Object.entries(timing.sampleShapes).map(([k, s]) => `${k} [${s.join(', ')}]`).join(', ');
    const sum = timing.stageMs.reduce((a, b) => a + b, 0);
    console.log(`\ntimes: median of runs on ${shapes}, 1 thread; stages sum to ${ms(sum)} ms`);
  }
  for (const c of cut.cuts) {
    const n = c.tensors.length;
    console.log(`\ncut ${c.after} (${cut.stages[c.after - 1].name} | ${cut.stages[c.after].name}): ${n} tensor${n === 1 ? '' : 's'}, ${formatBytes(c.bytesPerItem)} per item`);
    console.log(table([['  tensor', 'datatype', 'per item', 'bytes', 'from', 'to'], ...c.tensors.map((t) => [
      `  ${t.name}`, t.datatype, `[${t.itemShape.join(', ')}]`, thousands(t.bytesPerItem), `stage ${t.from}`, `stage ${t.to}`,
    ])]));
  }
  if (cut.cuts.length) console.log('\nsizes per item are at the sample dims; every item of a batch crosses, and over Lambda it is a payload');
  if (cut.prunedNodes) console.log(`dropped ${cut.prunedNodes} nodes that feed no output`);
  console.log('');
  for (const f of report.files) console.log(`wrote ${shortPath(f)}`);
  console.log(`wrote ${shortPath(report.manifestPath)}  (check it: ensemble verify ${shortPath(report.manifestPath)} --against ${shortPath(modelPath)})`);
}

export const decomposeCommand: Command = {
  name: 'decompose',
  summary: 'Cut one ONNX model into stage models that compute the same thing, and write a pipeline wiring them.',
  usage: 'decompose <model.onnx> (--stages N | --at t1,t2) [--out DIR] [--name PREFIX] [--dim name=size ...] [--sample-batch 1]',
  help: [
    ['--stages N', 'N stages of about equal estimated cost (FLOPs from the shapes seen on a sample run)'],
    ['--at t1,t2', 'cut after the tensors t1, t2, ... (stage k computes t_k and what it needs)'],
    ['--out DIR', 'where the stage models and pipeline.yaml go (default: <name>-stages)'],
    ['--name PREFIX', 'stage names PREFIX_1, PREFIX_2, ...; also the pipeline name (default: the file name)'],
    ['--dim name=size', 'size of a symbolic input dim for the sample runs (default 1; repeatable)'],
    ['--sample-batch N', 'rows of the sample input the stages are timed on (default 1; 0 skips timing)'],
    ['--runs N', 'timed runs per stage, median reported (default 5)'],
  ],
  options: {
    stages: { type: 'string' },
    at: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string' },
    dim: { type: 'string', multiple: true },
    'sample-batch': { type: 'string' },
    runs: { type: 'string' },
  },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError('decompose takes one model file');
    const modelPath = positionals[0];
    if ((values.stages === undefined) === (values.at === undefined)) throw new UsageError('give either --stages N or --at t1,t2');
    let plan: CutPlan;
    if (values.stages !== undefined) {
      const n = int(values.stages, 2, '--stages');
      if (n < 1) throw new UsageError('--stages must be at least 1');
      plan = { stages: n };
    } else {
      plan = { at: str(values.at, '').split(',').map((t) => t.trim()).filter(Boolean) };
    }
    const dims = parseDims((values.dim as string[] | undefined) ?? []);
    checkDimNames(inspectModel(modelPath).inputs, dims);
    const name = str(values.name, pipelineName(basename(modelPath).replace(/\.onnx$/i, '')));
    const report = await decomposeModel(modelPath, plan, {
      outDir: str(values.out, `${name}-stages`),
      name,
      dims,
      sampleBatch: int(values['sample-batch'], 1, '--sample-batch'),
      runs: int(values.runs, 5, '--runs'),
      log: (line) => console.error(line),
    });
    printReport(report, modelPath);
  },
};
