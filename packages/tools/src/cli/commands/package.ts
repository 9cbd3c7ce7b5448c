import type { Command } from '../args.js';
import { str } from '../args.js';
import { UsageError } from '../args.js';
import { pipelinesFromEnv, selectDeployment } from '../../deploy/select.js';
import type { LambdaArchitecture } from '../../deploy/types.js';
import { packageFunctions } from '../../package/package.js';

export const packageCommand: Command = {
  name: 'package',
  summary: 'Build each Lambda function (gateway and one per ONNX stage) into dist/lambda/<function>, as sst deploy uploads them.',
  usage: 'package [--pipeline NAME ...] [--function NAME ...] [--arch x86_64|arm64] [--root .]',
  help: [
    ['--pipeline NAME', 'package the functions of these pipelines only (repeatable; default ENSEMBLE_PIPELINES, else all)'],
    ['--function NAME', 'package only this function, by logical name, e.g. DemoBranchA (repeatable)'],
    ['--arch A', 'x86_64 (default) or arm64: which native builds of onnxruntime-node and sharp go in'],
    ['--root DIR', 'the project folder (default: the current one)'],
  ],
  options: {
    pipeline: { type: 'string', multiple: true }, function: { type: 'string', multiple: true },
    arch: { type: 'string' }, root: { type: 'string' },
  },
  async run({ values }) {
    const architecture = str(values.arch, 'x86_64');
    if (architecture !== 'x86_64' && architecture !== 'arm64') throw new UsageError(`--arch must be x86_64 or arm64, got '${architecture}'`);
    const root = str(values.root, process.cwd());
    const pipelines = (values.pipeline as string[] | undefined) ?? pipelinesFromEnv();
    const { plan } = await selectDeployment({ root, pipelines, architecture: architecture as LambdaArchitecture });
    const packaged = await packageFunctions(plan, { root, only: values.function as string[] | undefined, log: (s) => console.error(`[ensemble] ${s}`) });
    const w = Math.max(...packaged.map((p) => p.name.length));
    for (const p of packaged) console.log(`${p.name.padEnd(w)}  ${(p.bytes / 1048576).toFixed(1).padStart(6)} MB  ${p.dir}`);
    return 0;
  },
};
