import { relative } from 'node:path';
import type { Command } from '../args.js';
import { int, str, UsageError } from '../args.js';
import { initPipeline } from '../../init/init.js';

/** An inline curl body is kept for small examples; larger ones are sent from the file init wrote. */
const INLINE_LIMIT = 600;

export const initCommand: Command = {
  name: 'init',
  summary: 'Make a pipeline from an ONNX file: a manifest written from the model\'s metadata, the weights beside it, and a first request to send.',
  usage: 'init <model.onnx> [--name NAME] [--stages K] [--outputs a,b] [--models models] [--force]',
  help: [
    ['--name NAME', 'pipeline name (default: from the file name)'],
    ['--stages K', 'cut the model into K stages (ensemble decompose) and write the cut pipeline'],
    ['--outputs a,b', 'keep only these model outputs (the nodes only the others need are dropped)'],
    ['--models DIR', 'where pipeline folders live (default models, where npm start looks)'],
    ['--force', 'replace the pipeline folder if it exists'],
  ],
  options: { name: { type: 'string' }, stages: { type: 'string' }, outputs: { type: 'string' }, models: { type: 'string' }, force: { type: 'boolean' } },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError('init takes one model file: ensemble init model.onnx');
    const stages = values.stages === undefined ? undefined : int(values.stages, 2, '--stages');
    if (stages !== undefined && stages < 1) throw new UsageError('--stages must be at least 1');
    const r = await initPipeline({
      model: positionals[0],
      name: values.name === undefined ? undefined : str(values.name, ''),
      stages,
      outputs: values.outputs === undefined ? undefined : str(values.outputs, '').split(',').map((s) => s.trim()).filter(Boolean),
      modelsDir: str(values.models, 'models'),
      force: values.force === true,
      log: (line) => console.error(line),
    });
    // Relative to here when under it; a path outside (a --models elsewhere) reads better whole.
    const rel = (p: string) => { const r = relative(process.cwd(), p) || '.'; return r.startsWith('..') ? p : r; };
    console.log(`wrote ${rel(r.manifestPath)}${stages ? ` (${stages} stages)` : ''} and ${rel(r.examplePath)}`);
    for (const n of r.notes) console.log(`note: ${n}`);
    const body = JSON.stringify(r.example);
    const data = body.length <= INLINE_LIMIT ? `'${body}'` : `@${rel(r.examplePath)}`;
    console.log('\nserve it, then send a first request:\n');
    const models = str(values.models, 'models');
    console.log(models === 'models' ? '  npm start' : `  npm start -- --models ${models}`);
    console.log(`  curl -s localhost:8080/v2/models/${r.name}/infer -H 'content-type: application/json' -d ${data}`);
    return 0;
  },
};
