import { relative } from 'node:path';
import type { Command } from '../args.js';
import { str, UsageError } from '../args.js';
import { manifestPath } from '../pipeline-arg.js';
import { tune } from '../../tune/run.js';
import { formatMeasurements, formatProposal } from '../../tune/format.js';

/** `200ms`, `0.2s`, `200` (ms) -> milliseconds. */
export function parseDuration(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s)?$/.exec(v.trim());
  const n = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : NaN;
  if (!(n > 0)) throw new UsageError(`${flag} must be a duration such as 200ms or 0.5s, got '${v}'`);
  return n;
}

export function parseList(v: string, flag: string): number[] {
  const out = v.split(',').map((x) => Number(x.trim()));
  if (!out.length || out.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`${flag} must be a comma-separated list of positive integers, got '${v}'`);
  return out;
}

export const tuneCommand: Command = {
  name: 'tune',
  summary: 'Profile each ONNX stage alone over batch sizes and instance x thread splits, and propose the settings with the most throughput under a p99 budget.',
  usage: 'tune <pipeline> [--p99 200ms] [--request FILE ...] [--stage NAME ...] [--batch-sizes 1,2,4,...] [--quick] [--write]',
  help: [
    ['--p99 D', 'latency budget for the whole pipeline, e.g. 200ms or 1.5s (default 200ms); each stage gets a share along its path'],
    ['--request FILE', 'a sample request: an inference request .json, or the raw value of a single BYTES input (an image); repeatable.'],
    ['', 'without it numeric inputs are synthesized'],
    ['--stage NAME', 'profile only this ONNX stage (repeatable)'],
    ['--batch-sizes L', 'batch sizes to try (default 1,2,4,8,16,32,64)'],
    ['--quick', 'shorter measurements (about a third of the time, noisier)'],
    ['--write', 'write the proposed batch.max_size, batch.max_delay_ms, scale.instances and scale.threads into the manifest'],
    ['--models DIR', 'where pipeline folders live (default models)'],
  ],
  options: {
    p99: { type: 'string' }, request: { type: 'string', multiple: true }, stage: { type: 'string', multiple: true },
    'batch-sizes': { type: 'string' }, quick: { type: 'boolean' }, write: { type: 'boolean' }, models: { type: 'string' },
  },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError('tune needs exactly one pipeline (a name under models/, a folder or a pipeline.yaml)');
    const file = manifestPath(positionals[0], str(values.models, 'models'));
    const budgetMs = parseDuration(str(values.p99, '200ms'), '--p99');
    const log = (s: string) => console.error(s);
    const r = await tune({
      manifestFile: file,
      budgetMs,
      requestFiles: values.request as string[] | undefined,
      stages: values.stage as string[] | undefined,
      batchSizes: typeof values['batch-sizes'] === 'string' ? parseList(values['batch-sizes'], '--batch-sizes') : undefined,
      quick: values.quick === true,
      write: values.write === true,
      log,
    });
    for (const p of r.profiles) {
      console.log(`\n${p.stage}${p.dependsOn.length ? ` (after ${p.dependsOn.join(', ')})` : ''}`);
      if (p.note) console.log(`  ${p.note}`);
      console.log(formatMeasurements(p));
    }
    console.log(`\nproposal for p99 <= ${budgetMs} ms:`);
    console.log(formatProposal(r.proposal, r.profiles));
    console.log(r.written ? `\nwrote ${relative(process.cwd(), file) || file}` : '\n(dry run: --write puts these settings in the manifest)');
    return 0;
  },
};
