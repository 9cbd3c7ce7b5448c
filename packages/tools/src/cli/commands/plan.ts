import type { Command } from '../args.js';
import { str } from '../args.js';
import { pipelinesFromEnv, selectDeployment, stageGlibcTunablesFromEnv, telemetryFromEnv } from '../../deploy/select.js';
import type { DeploymentPlan } from '../../deploy/types.js';

export const planCommand: Command = {
  name: 'plan',
  summary: 'Show the Lambda deployment plan: each function, its memory and timeout, and which stages run in it.',
  usage: 'plan [--pipeline NAME ...] [--root .] [--json]',
  help: [
    ['--pipeline NAME', 'plan these pipelines only (repeatable; default ENSEMBLE_PIPELINES, else all)'],
    ['--root DIR', 'the project folder (default: the current one)'],
    ['--json', 'the whole plan as JSON'],
  ],
  options: { pipeline: { type: 'string', multiple: true }, root: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values }) {
    const root = str(values.root, process.cwd());
    const pipelines = (values.pipeline as string[] | undefined) ?? pipelinesFromEnv();
    const { plan } = await selectDeployment({ root, pipelines, stageGlibcTunables: stageGlibcTunablesFromEnv(), telemetry: telemetryFromEnv() });
    if (values.json) console.log(JSON.stringify(plan, null, 2));
    else for (const line of placementLines(plan)) console.log(line);
    for (const w of plan.warnings) console.error(`[ensemble] warning: ${w}`);
    return 0;
  },
};

/** One line per function: name, memory, timeout, and the stages it runs in order (co-located ones before and after the model). */
export function placementLines(plan: DeploymentPlan): string[] {
  const rows: string[][] = [['function', 'memory', 'timeout', 'runs', 'receives', 'returns besides the model\'s outputs', 'model outputs it keeps']];
  for (const s of plan.stages) {
    const name = (c: DeploymentPlan['stages'][number]['colocated'][number]) => (c.mode === 'both' ? `${c.stage} (also in gateway)` : c.stage);
    const runs = [...s.colocated.filter((c) => !c.after).map(name), `${s.stage} (onnx)`, ...s.colocated.filter((c) => c.after).map(name)].join(' -> ');
    rows.push([s.name, `${s.memoryMb} MB`, `${s.timeoutSeconds} s`, `${s.pipeline}: ${runs}`, s.receives.join(', '), s.returns.join(', ') || '-', s.kept.join(', ') || '-']);
  }
  const g = plan.gateway;
  rows.push([g.name, `${g.memoryMb} MB`, `${g.timeoutSeconds} s`, 'the DAG and every function stage not moved above', '-', '-', '-']);
  for (const c of plan.jobs?.consumers ?? []) {
    const from = c.eventSources.map((e) => `${e.queue} (${e.batchSize} a call${e.maximumConcurrency ? `, ${e.maximumConcurrency} at once` : ''})`).join(', ');
    rows.push([c.name, `${c.memoryMb} MB`, `${c.timeoutSeconds} s`, `${c.pipeline}: batch jobs, the DAG as the gateway runs it`, from, '-', '-']);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join('  '));
}
