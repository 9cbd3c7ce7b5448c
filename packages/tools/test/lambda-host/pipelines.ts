/**
 * Pipelines that exercise the Lambda path's edges, written into a models
 * folder from tiny ONNX models built here:
 *  - `bulky`: widen (x [1] -> 2,621,440 copies: a 10 MiB FP32 tensor per item)
 *    then narrow (their sum), so a 10 MB intermediate crosses Invoke twice;
 *  - `faulty`: lookup (Gather from [10, 20, 30] by an INT64 index), which
 *    ONNX Runtime refuses at run time for an index out of range.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphBuilder } from '../../src/onnx/builder.js';

/** FP32 elements per item of the wide tensor: exactly 10 MiB. */
export const BULKY_WIDTH = (10 * 1024 * 1024) / 4;
export const FAULTY_TABLE = [10, 20, 30];

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function writeModel(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  await mkdir(join(dir, 'build'), { recursive: true });
  await writeFile(join(dir, 'build', `${name}.onnx`), bytes);
  return sha256(bytes);
}

export async function writeBulkyPipeline(modelsDir: string): Promise<string> {
  const dir = join(modelsDir, 'bulky');
  const widen = new GraphBuilder('widen')
    .input('x', 'FP32', ['batch', 1])
    .output('wide', 'FP32', ['batch', BULKY_WIDTH])
    .initializer('repeats', 'INT64', [2], BigInt64Array.from([1n, BigInt(BULKY_WIDTH)]))
    .node('Tile', ['x', 'repeats'], ['wide'])
    .build();
  const narrow = new GraphBuilder('narrow')
    .input('wide', 'FP32', ['batch', BULKY_WIDTH])
    .output('y', 'FP32', ['batch', 1])
    .initializer('axes', 'INT64', [1], BigInt64Array.from([1n]))
    .node('ReduceSum', ['wide', 'axes'], ['y'], { keepdims: 1 })
    .build();
  const file = join(dir, 'pipeline.yaml');
  await writeFile(file, `
name: bulky
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 1] }]
stages:
  - name: widen
    kind: onnx
    weights: { key: bulky/widen.onnx, sha256: ${await writeModel(dir, 'widen', widen)}, source: build/widen.onnx }
    inputs: { x: x }
    outputs: { wide: wide }
  - name: narrow
    kind: onnx
    weights: { key: bulky/narrow.onnx, sha256: ${await writeModel(dir, 'narrow', narrow)}, source: build/narrow.onnx }
    inputs: { wide: wide }
    outputs: { y: y }
`);
  return file;
}

export async function writeFaultyPipeline(modelsDir: string): Promise<string> {
  const dir = join(modelsDir, 'faulty');
  const lookup = new GraphBuilder('lookup')
    .input('i', 'INT64', ['batch'])
    .output('v', 'FP32', ['batch'])
    .initializer('table', 'FP32', [FAULTY_TABLE.length], Float32Array.from(FAULTY_TABLE))
    .node('Gather', ['table', 'i'], ['v'], { axis: 0 })
    .build();
  const file = join(dir, 'pipeline.yaml');
  await writeFile(file, `
name: faulty
inputs: [{ name: i, datatype: INT64, shape: [-1] }]
outputs: [{ name: v, datatype: FP32, shape: [-1] }]
stages:
  - name: lookup
    kind: onnx
    weights: { key: faulty/lookup.onnx, sha256: ${await writeModel(dir, 'lookup', lookup)}, source: build/lookup.onnx }
    inputs: { i: i }
    outputs: { v: v }
    # Two items share a call, so one bad index fails the whole batch.
    batch: { max_size: 2, max_delay_ms: 50 }
`);
  return file;
}
