import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from '../args.js';
import { str, UsageError } from '../args.js';
import { manifestPath } from '../pipeline-arg.js';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import { decodeInferRequest } from '@ensemble/core/tensor/codec.js';
import { validateInputs } from '@ensemble/core/manifest/validate-inputs.js';
import { ReferenceBuilder } from '@ensemble/core/monitors/reference-stats.js';
import { EnsembleError } from '@ensemble/core/errors.js';

export const monitorCommand: Command = {
  name: 'monitor',
  summary: 'Write the reference file drift monitors compare traffic with, from sample request bodies.',
  usage: 'monitor reference <pipeline> <request.json ...> [--out reference.json]',
  help: [
    ['reference', 'statistics (items, mean, std, the histograms the manifest\'s drift monitors ask for) of each numeric input over the requests given'],
    ['--out FILE', 'where to write (default: the file the pipeline\'s drift monitors name, when they name one)'],
  ],
  options: { out: { type: 'string' } },
  async run({ values, positionals }) {
    const [sub, pipeline, ...bodies] = positionals;
    if (sub !== 'reference') throw new UsageError(`monitor takes a subcommand: reference (got ${sub ? `'${sub}'` : 'none'})`);
    if (!pipeline || bodies.length === 0) throw new UsageError('monitor reference takes a pipeline and at least one request body (Open Inference Protocol JSON)');
    // The reference files are what this writes: they may not exist yet.
    const manifest = await loadManifest(manifestPath(pipeline), { readReferences: false });
    const builder = new ReferenceBuilder(manifest);
    for (const file of bodies) {
      const body = new Uint8Array(await readFile(file));
      let tensors;
      try {
        tensors = decodeInferRequest(body, undefined, { maxItems: manifest.maxItems }).tensors;
        validateInputs(manifest, tensors);
      } catch (e) {
        throw new EnsembleError(`${file}: ${e instanceof Error ? e.message : String(e)}`, 'usage', { cause: e });
      }
      builder.add(tensors);
    }
    const out = str(values.out, '') || namedFile(manifest.inputs.flatMap((i) => i.monitors ?? []));
    const ref = builder.result(bodies.map((b) => path.relative(path.dirname(out), path.resolve(b)).split(path.sep).join('/')));
    await writeFile(out, `${JSON.stringify(ref, null, 2)}\n`);
    const summary = Object.entries(ref.tensors).map(([n, t]) => `${n}: ${t.items} items, mean ${t.mean.toPrecision(4)}, std ${t.std.toPrecision(4)}`);
    console.log(`wrote ${out} (${summary.join('; ') || 'no numeric inputs'})`);
    return 0;
  },
};

function namedFile(monitors: { rule: string; reference?: { kind: string; file?: string } }[]): string {
  const files = [...new Set(monitors.flatMap((m) => (m.rule === 'drift' && m.reference?.kind === 'file' && m.reference.file ? [m.reference.file] : [])))];
  if (files.length === 1) return files[0];
  throw new UsageError(files.length
    ? `the pipeline's drift monitors name ${files.length} reference files (${files.join(', ')}): say which with --out`
    : 'the pipeline\'s drift monitors name no reference file: say where to write with --out');
}
