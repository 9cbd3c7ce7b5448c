import { readFile } from 'node:fs/promises';
import type { Command } from '../args.js';
import { int, str, UsageError } from '../args.js';
import { manifestPath } from '../pipeline-arg.js';
import { parseDims } from '../../decompose/samples.js';
import { verifyPipeline } from '../../decompose/verify.js';
import { decodeInferRequest } from '@ensemble/core/tensor/codec.js';

const fmt = (n: number): string => (n === 0 ? '0' : Number.isFinite(n) ? n.toExponential(2) : String(n));

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'Check that a pipeline\'s stages cut from a model compute what the whole model computes.',
  usage: 'verify <pipeline> --against <model.onnx> [--inputs request.json] [--tolerance 1e-4] [--samples 3] [--batch 2] [--dim name=size ...] [--stage a,b]',
  help: [
    ['--against FILE', 'the whole model the stages were cut from'],
    ['--inputs FILE', 'an Open Inference Protocol request body with the model\'s inputs (default: random samples)'],
    ['--tolerance X', 'largest allowed |a-b|/max(1,|b|) (default 1e-4); exit code 1 above it'],
    ['--samples N', 'random samples to try (default 3)'],
    ['--batch N', 'rows per random sample (default 2)'],
    ['--dim name=size', 'size of a symbolic input dim in random samples (default 1; repeatable)'],
    ['--stage a,b', 'the stages to compare (default: the ONNX stages whose models were cut from --against)'],
  ],
  options: {
    against: { type: 'string' },
    inputs: { type: 'string' },
    tolerance: { type: 'string' },
    samples: { type: 'string' },
    batch: { type: 'string' },
    dim: { type: 'string', multiple: true },
    stage: { type: 'string' },
  },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError('verify takes one pipeline (a name, folder or pipeline.yaml)');
    if (typeof values.against !== 'string') throw new UsageError('verify needs --against <model.onnx>');
    const tolerance = values.tolerance === undefined ? 1e-4 : Number(values.tolerance);
    if (!Number.isFinite(tolerance) || tolerance < 0) throw new UsageError(`--tolerance must be a number >= 0, got '${String(values.tolerance)}'`);
    const inputs = typeof values.inputs === 'string'
      ? [decodeInferRequest(new Uint8Array(await readFile(values.inputs))).tensors]
      : undefined;
    const report = await verifyPipeline(manifestPath(positionals[0]), values.against, {
      inputs,
      tolerance,
      samples: int(values.samples, 3, '--samples'),
      batch: int(values.batch, 2, '--batch'),
      dims: parseDims((values.dim as string[] | undefined) ?? []),
      stages: typeof values.stage === 'string' ? str(values.stage, '').split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      log: (line) => console.error(line),
    });
    const rows = [['output', 'pipeline tensor', 'max abs', 'max rel'], ...report.outputs.map((o) => [o.output, o.tensor, fmt(o.maxAbs), fmt(o.maxRel)])];
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd());
    for (const o of report.outputs) if (o.problem) console.log(`${o.output}: ${o.problem}`);
    const what = `${report.samples} sample${report.samples === 1 ? '' : 's'}, stages ${report.stages.join(', ')}`;
    if (report.ok) {
      console.log(`ok: within tolerance ${report.tolerance} (${what})`);
      return 0;
    }
    console.log(`FAILED: over tolerance ${report.tolerance} (${what})`);
    return 1;
  },
};
