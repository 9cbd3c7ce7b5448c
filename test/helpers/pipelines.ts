/**
 * Generated pipeline folders for gateway tests: a models directory holding
 * the real demo (linked, so its own build.ts and stage code are used) and
 * pipelines written here from tiny ONNX models and function-stage modules.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256Hex } from '../../packages/core/test/fixtures/models.js';
import { GraphBuilder } from '../../packages/tools/src/onnx/builder.js';
import type { Datatype } from '../../packages/core/src/tensor/types.js';
import { loadManifest } from '../../packages/core/src/manifest/load.js';
import { buildIfNeeded } from '../../packages/tools/src/pipelines/build.js';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

async function write(file: string, content: string | Uint8Array): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
}

/**
 * `<modelsDir>/demo/pipeline.yaml`: the repository's demo manifest, with its
 * stage module and weight sources pointed back at models/demo (absolute), so
 * the real stage code and weights are served from a models folder of the
 * test's own. (A symlinked folder would do for Node, but vitest's loader
 * resolves a symlinked module's imports from the link, not the target.)
 */
export async function addDemo(modelsDir: string): Promise<void> {
  const demoDir = join(REPO, 'models', 'demo');
  const manifest = await loadManifest(join(demoDir, 'pipeline.yaml'));
  await buildIfNeeded(manifest);
  const yaml = (await readFile(manifest.file, 'utf8'))
    .replace(/^(\s*(?:-\s*)?(?:module|source):\s*)(\S+)\s*$/gm, (_all, key: string, rel: string) => `${key}${join(demoDir, rel)}`)
    .replace(/(source:\s*)([^,}\s]+)/g, (all, key: string, rel: string) => (rel.startsWith('/') ? all : `${key}${join(demoDir, rel)}`));
  await write(join(modelsDir, 'demo', 'pipeline.yaml'), yaml);
}

/** Every datatype onnxruntime-node runs through an ONNX Identity (BYTES as UTF-8 strings). */
export const ONNX_DATATYPES: readonly Datatype[] = [
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES',
];

export const dtInput = (dt: Datatype) => `x_${dt.toLowerCase()}`;
export const dtOutput = (dt: Datatype) => `y_${dt.toLowerCase()}`;

/**
 * One ONNX model with an Identity per datatype: x_<dt> -> y_<dt>, each [batch, n].
 * One model rather than one per datatype: every ONNX stage is its own worker
 * process under `ensemble serve`, and thirteen of them cost seconds to start.
 */
export function identityPerDatatypeModel(): Uint8Array {
  const g = new GraphBuilder('identity_per_datatype');
  for (const dt of ONNX_DATATYPES) {
    g.input(dtInput(dt), dt, ['batch', 'n']).output(dtOutput(dt), dt, ['batch', 'n']).node('Identity', [dtInput(dt)], [dtOutput(dt)]);
  }
  return g.build();
}

/**
 * `dtypes`: every datatype through an ONNX stage (`identity`: x_<dt> -> y_<dt>,
 * shape [-1, -1]), plus `raw`: a function-stage identity for BYTES [-1], which
 * carries any bytes (ONNX Runtime strings cannot hold invalid UTF-8 or NUL).
 */
export async function writeDatatypesPipeline(modelsDir: string): Promise<void> {
  const dir = join(modelsDir, 'dtypes');
  const bytes = identityPerDatatypeModel();
  await write(join(dir, 'build', 'identity.onnx'), bytes);
  // The rows of one request share their length, so nothing is ever padded; a free dim needs the declaration all the same.
  const tensors = (kind: (dt: Datatype) => string, out = false) => ONNX_DATATYPES.map((dt) => `  - { name: ${kind(dt)}, datatype: ${dt}, shape: [-1, -1]${out ? ', ragged: { pad_value: 0 }' : ''} }`);
  const wiring = (kind: (dt: Datatype) => string) => `{ ${ONNX_DATATYPES.map((dt) => `${kind(dt)}: ${kind(dt)}`).join(', ')} }`;
  await write(join(dir, 'stages', 'identity.ts'), 'export default { process: (item: any) => ({ v: item.v }) };\n');
  await write(join(dir, 'pipeline.yaml'), [
    'name: dtypes',
    'description: Every datatype through the gateway and back.',
    'inputs:', ...tensors(dtInput), '  - { name: raw_in, datatype: BYTES, shape: [-1] }',
    'outputs:', ...tensors(dtOutput, true), '  - { name: raw_out, datatype: BYTES, shape: [-1] }',
    'stages:',
    '  - name: identity',
    '    kind: onnx',
    `    weights: { key: dtypes/identity.onnx, sha256: ${sha256Hex(bytes)}, source: build/identity.onnx }`,
    `    inputs: ${wiring(dtInput)}`,
    `    outputs: ${wiring(dtOutput)}`,
    '  - name: raw',
    '    kind: function',
    '    module: stages/identity.ts',
    '    inputs: { v: raw_in }',
    '    outputs: { v: raw_out }',
    '',
  ].join('\n'));
}

/** The byte limit of the `guarded` pipeline. */
export const GUARDED_MAX_BYTES = 400;

/**
 * `guarded`: a small body limit and one function stage, `check`, that passes
 * x through unless x[0] < 0 (it throws, naming the value) or x[0] == 99 (it
 * sleeps past its 300 ms timeout).
 */
export async function writeGuardedPipeline(modelsDir: string): Promise<void> {
  const dir = join(modelsDir, 'guarded');
  await write(join(dir, 'stages', 'check.ts'), `
export default {
  async process(item: any) {
    const v = item.x.data[0];
    if (v < 0) throw new Error(\`x[0] is negative (\${v})\`);
    if (v === 99) await new Promise((r) => setTimeout(r, 1000));
    return { y: item.x };
  },
};
`);
  await write(join(dir, 'pipeline.yaml'), `
name: guarded
version: "2"
max_request_bytes: ${GUARDED_MAX_BYTES}
inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
stages:
  - name: check
    kind: function
    module: stages/check.ts
    inputs: [x]
    outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
    timeout_ms: 300
`);
}

/**
 * `name`: one INT32 function stage that passes its rows through, with the
 * batch settings given (a YAML flow map), for tests of queues and admission;
 * `module`, the stage's source, for one that does something else (x in, y out).
 */
export async function writePassPipeline(
  modelsDir: string, name: string, batch: string, module = 'export default { process: (item: any) => ({ y: item.x }) };\n',
): Promise<void> {
  const dir = join(modelsDir, name);
  await write(join(dir, 'stages', 'pass.ts'), module);
  await write(join(dir, 'pipeline.yaml'), `
name: ${name}
inputs: [{ name: x, datatype: INT32, shape: [-1] }]
outputs: [{ name: y, datatype: INT32, shape: [-1] }]
stages:
  - name: pass
    kind: function
    module: stages/pass.ts
    inputs: [x]
    outputs: [y]
    batch: ${batch}
`);
}

/**
 * `busy`: one function stage whose queue holds two items, and whose batches
 * wait 200 ms to fill: a request of three rows overflows it at once (429).
 */
export async function writeBusyPipeline(modelsDir: string): Promise<void> {
  await writePassPipeline(modelsDir, 'busy', '{ max_size: 8, max_delay_ms: 200, max_queue: 2 }');
}

/**
 * `overlap`: one INT32 function stage that takes 50 ms per item and answers,
 * for each row, how many items were in the stage when its own began: what a
 * job's items tell of how many of them ran side by side.
 */
export async function writeOverlapPipeline(modelsDir: string): Promise<void> {
  await writePassPipeline(modelsDir, 'overlap', '{ max_size: 1, max_delay_ms: 0 }', `let running = 0;
export default {
  async process(item: any) {
    const seen = ++running;
    await new Promise((r) => setTimeout(r, 50));
    running--;
    return { y: { ...item.x, data: Int32Array.from(item.x.data, () => seen) } };
  },
};
`);
}
