import { readFile } from 'node:fs/promises';
import type { Command } from '../args.js';
import { int, str, UsageError } from '../args.js';
import { manifestPath } from '../pipeline-arg.js';
import { parseDims } from '../../decompose/samples.js';
import { verifyPipeline } from '../../decompose/verify.js';
import { buildIfNeeded } from '../../pipelines/build.js';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import { decodeInferRequest } from '@ensemble/core/tensor/codec.js';

const fmt = (n: number): string => (n === 0 ? '0' : Number.isFinite(n) ? n.toExponential(2) : String(n));

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'Check that a pipeline\'s stages cut from a model compute what the whole model computes.',
  usage: 'verify <pipeline> --against <model.onnx> [--inputs request.json] [--atol X] [--rtol X] [--samples 3] [--batch 2] [--dim name=size ...] [--stage a,b]',
  help: [
    ['--against FILE', 'the whole model the stages were cut from'],
    ['--inputs FILE', 'an Open Inference Protocol request body with the model\'s inputs (default: random samples)'],
    ['--atol X', 'allowed |a-b| <= atol + rtol*|b| (default from the datatypes: FP32 1e-4, FP16 1e-2, BF16 5e-2, integers 0)'],
    ['--rtol X', 'see --atol; exit code 1 above either'],
    ['--tolerance X', 'both --atol and --rtol'],
    ['--samples N', 'random samples to try (default 3)'],
    ['--batch N', 'rows per random sample (default 2)'],
    ['--dim name=size', 'size of a symbolic input dim in random samples (default 1; repeatable)'],
    ['--stage a,b', 'the stages to compare (default: the ONNX stages whose models were cut from --against)'],
  ],
  options: {
    against: { type: 'string' },
    inputs: { type: 'string' },
    tolerance: { type: 'string' },
    atol: { type: 'string' },
    rtol: { type: 'string' },
    samples: { type: 'string' },
    batch: { type: 'string' },
    dim: { type: 'string', multiple: true },
    stage: { type: 'string' },
  },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError('verify takes one pipeline (a name, folder or pipeline.yaml)');
    if (typeof values.against !== 'string') throw new UsageError('verify needs --against <model.onnx>');
    const number = (flag: string, v: unknown): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--${flag} must be a number >= 0, got '${String(v)}'`);
      return n;
    };
    const both = number('tolerance', values.tolerance);
    const atol = number('atol', values.atol) ?? both;
    const rtol = number('rtol', values.rtol) ?? both;
    const inputs = typeof values.inputs === 'string'
      ? [decodeInferRequest(new Uint8Array(await readFile(values.inputs))).tensors]
      : undefined;
    const manifest = await loadManifest(manifestPath(positionals[0]));
    // Cut stage models are derived files, not committed (models/ocr-split): make them as `ensemble serve` would.
    await buildIfNeeded(manifest, (line) => console.error(line));
    const report = await verifyPipeline(manifest, values.against, {
      inputs,
      atol,
      rtol,
      samples: int(values.samples, 3, '--samples'),
      batch: int(values.batch, 2, '--batch'),
      dims: parseDims((values.dim as string[] | undefined) ?? []),
      stages: typeof values.stage === 'string' ? str(values.stage, '').split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      log: (line) => console.error(line),
    });
    const from = `the datatypes crossing the cuts (${report.crossing.join(', ') || 'none'}) and of the outputs (${report.outputTypes.join(', ')})`;
    const given = atol !== undefined || rtol !== undefined;
    console.log(`tolerance: atol ${report.tolerance.atol}, rtol ${report.tolerance.rtol} (from ${from}${given ? '; overridden by --atol/--rtol' : ''})`);
    const rows = [['output', 'pipeline tensor', 'max abs', 'max rel', 'of allowed'], ...report.outputs.map((o) => [o.output, o.tensor, fmt(o.maxAbs), fmt(o.maxRel), fmt(o.excess)])];
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd());
    for (const o of report.outputs) if (o.problem) console.log(`${o.output}: ${o.problem}`);
    const what = `${report.samples} sample${report.samples === 1 ? '' : 's'}, stages ${report.stages.join(', ')}`;
    if (report.ok) {
      console.log(`ok: within tolerance (${what})`);
      return 0;
    }
    console.log(`FAILED: over tolerance (${what})`);
    return 1;
  },
};
