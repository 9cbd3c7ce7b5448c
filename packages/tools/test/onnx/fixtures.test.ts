import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Datatype } from '../../../core/src/tensor/types.js';
import {
  addModel, castModel, identityModel, MATMUL_RELU, matmulReluModel, ORT_DATATYPES, scaleModel, seededDense,
  sha256Hex, SKIP_DIM, SKIP_HIDDEN, SKIP_WEIGHTS, skipConnectionModel, slowModel, slowWeights, writeModel,
} from '../../../core/test/fixtures/models.js';
import { add, addRow, matmul, maxRelError, relu, tanh } from '../../../core/test/fixtures/reference.js';
import { createSession, ORT_TYPE, ort, runModel } from '../../../core/test/fixtures/ort.js';

const f32 = (shape: number[], values: number[]): ort.Tensor => new ort.Tensor('float32', Float32Array.from(values), shape);
const values = (t: ort.Tensor): number[] => Array.from(t.data as ArrayLike<number>, Number);

/** Sample data per datatype, with edge values each type must carry intact. */
function sample(dt: Datatype): ort.Tensor['data'] {
  switch (dt) {
    case 'BOOL': return Uint8Array.of(1, 0, 1, 1, 0, 0);
    case 'UINT8': return Uint8Array.of(0, 1, 127, 128, 254, 255);
    case 'UINT16': return Uint16Array.of(0, 1, 256, 32768, 65534, 65535);
    case 'UINT32': return Uint32Array.of(0, 1, 65536, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1);
    case 'UINT64': return BigUint64Array.of(0n, 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 2n, 2n ** 64n - 1n);
    case 'INT8': return Int8Array.of(-128, -1, 0, 1, 126, 127);
    case 'INT16': return Int16Array.of(-32768, -1, 0, 1, 32766, 32767);
    case 'INT32': return Int32Array.of(-(2 ** 31), -1, 0, 1, 2 ** 31 - 2, 2 ** 31 - 1);
    case 'INT64': return BigInt64Array.of(-(2n ** 63n), -(2n ** 53n) - 1n, -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n);
    // 1, -2, 0.5, 65504 (max half), +0, -0 as raw half bits
    case 'FP16': return Uint16Array.of(0x3c00, 0xc000, 0x3800, 0x7bff, 0x0000, 0x8000);
    case 'FP32': return Float32Array.of(-1.5, 0, 3.4e38, 1e-38, Math.fround(0.1), 7);
    case 'FP64': return Float64Array.of(0.1, -0.2, 1e308, 5e-324, Math.PI, -0);
    // No NUL inside a string: onnxruntime-node 1.30 cuts string elements at the first NUL.
    case 'BYTES': return ['', 'hello', 'héllo wörld', 'tab\there', '日本語', 'x'.repeat(300)];
  }
}

describe('fixture models run in onnxruntime-node and match plain JS', () => {
  it('addModel: sum of two [batch, n] inputs, any batch and n', async () => {
    const bytes = addModel();
    for (const [batch, n] of [[1, 1], [3, 5]]) {
      const a = Array.from({ length: batch * n }, (_, i) => i * 0.5 - 1);
      const b = Array.from({ length: batch * n }, (_, i) => 10 - i);
      const out = await runModel(bytes, { a: f32([batch, n], a), b: f32([batch, n], b) });
      expect(out.sum.dims).toEqual([batch, n]);
      expect(values(out.sum)).toEqual(add(a, b));
    }
  });

  it('scaleModel: x * k for the given dims', async () => {
    const x = [1, -2, 0.5, 4, 8, -16];
    const out = await runModel(scaleModel(2.5, [2, 3]), { x: f32([2, 3], x) });
    expect(out.y.dims).toEqual([2, 3]);
    expect(values(out.y)).toEqual(x.map((v) => v * 2.5));
  });

  it('matmulReluModel: Relu(x·w + b), default and custom sizes', async () => {
    const x = [0.3, -1.2, 2.0, 0.7, -0.5, 0.25, 1.5, -2.0];
    const out = await runModel(matmulReluModel(), { x: f32([2, 4], x) });
    const expected = relu(addRow(matmul(x, MATMUL_RELU.w, 2, 4, 3), MATMUL_RELU.b));
    expect(out.y.dims).toEqual([2, 3]);
    expect(maxRelError(values(out.y), expected)).toBeLessThan(1e-5);
    expect(expected.some((v) => v === 0) && expected.some((v) => v > 0)).toBe(true);

    const spec = seededDense(6, 5, 99);
    const x6 = Array.from({ length: 6 }, (_, i) => i - 2.5);
    const out6 = await runModel(matmulReluModel(spec), { x: f32([1, 6], x6) });
    expect(maxRelError(values(out6.y), relu(addRow(matmul(x6, spec.w, 1, 6, 5), spec.b)))).toBeLessThan(1e-5);
  });

  it('skipConnectionModel: Tanh(Relu(x·w1 + b1)·w2 + b2)·w3 + x', async () => {
    const w = SKIP_WEIGHTS;
    const batch = 3;
    const x = Array.from({ length: batch * SKIP_DIM }, (_, i) => Math.sin(i) * 2);
    const h3 = relu(addRow(matmul(x, w.w1, batch, SKIP_DIM, SKIP_HIDDEN), w.b1));
    const h6 = tanh(addRow(matmul(h3, w.w2, batch, SKIP_HIDDEN, SKIP_HIDDEN), w.b2));
    const expected = add(matmul(h6, w.w3, batch, SKIP_HIDDEN, SKIP_DIM), x);
    const out = await runModel(skipConnectionModel(), { x: f32([batch, SKIP_DIM], x) });
    expect(out.y.dims).toEqual([batch, SKIP_DIM]);
    expect(maxRelError(values(out.y), expected)).toBeLessThan(1e-5);
  });

  it('slowModel: exact permutation chain, and its runtime on one thread is reported', async () => {
    const x = [0.5, -1, 2, 0.25, 1, 1, -1, 3];
    const expectedFor = (iterations: number, size: number): number[] => {
      const { win, r, c } = slowWeights(size);
      const e = matmul(x, win, 2, 4, size);
      const out: number[] = [];
      for (let b = 0; b < 2; b++) {
        const eSum = e.slice(b * size, (b + 1) * size).reduce((s, v) => s + v, 0);
        for (let k = 0; k < 4; k++) {
          let rc = 0;
          for (let j = 0; j < size; j++) rc += r[(j + iterations) % size] * c[j * 4 + k];
          out.push(eSum * rc);
        }
      }
      return out;
    };
    for (const [iterations, size] of [[3, 16], [5, 512]]) {
      const out = await runModel(slowModel(iterations, size), { x: f32([2, 4], x) });
      expect(out.y.dims).toEqual([2, 4]);
      expect(maxRelError(values(out.y), expectedFor(iterations, size))).toBeLessThan(1e-4);
    }

    // Measured for the record (never asserted: the machine is shared).
    const session = await createSession(slowModel());
    try {
      const one = { x: f32([1, 4], x.slice(0, 4)) };
      await session.run(one);
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await session.run(one);
        times.push(performance.now() - t0);
      }
      console.log(`slowModel() (60 iterations, size 512, batch 1, 1 thread): ${times.map((t) => t.toFixed(0)).join(' / ')} ms`);
    } finally {
      await session.release();
    }
  });

  it.each(ORT_DATATYPES)('identityModel(%s) carries every value through unchanged', async (dt) => {
    const data = sample(dt);
    const out = await runModel(identityModel(dt), { x: new ort.Tensor(ORT_TYPE[dt], data, [2, 3]) });
    expect(out.y.type).toBe(ORT_TYPE[dt]);
    expect(out.y.dims).toEqual([2, 3]);
    expect(Array.from(out.y.data as ArrayLike<unknown>)).toEqual(Array.from(data as ArrayLike<unknown>));
  });

  const casts: [Datatype, Datatype, ort.Tensor['data'], unknown[]][] = [
    ['INT32', 'INT64', Int32Array.of(-(2 ** 31), -1, 0, 7), [-(2n ** 31n), -1n, 0n, 7n]],
    ['INT64', 'INT32', BigInt64Array.of(-5n, 0n, 2n ** 31n - 1n, 42n), [-5, 0, 2 ** 31 - 1, 42]],
    ['INT64', 'FP64', BigInt64Array.of(-3n, 0n, 2n ** 52n, 9n), [-3, 0, 2 ** 52, 9]],
    ['UINT8', 'FP32', Uint8Array.of(0, 1, 128, 255), [0, 1, 128, 255]],
    ['UINT8', 'BOOL', Uint8Array.of(0, 1, 2, 255), [0, 1, 1, 1]],
    ['BOOL', 'INT32', Uint8Array.of(1, 0, 0, 1), [1, 0, 0, 1]],
    ['FP32', 'BOOL', Float32Array.of(0, -0.5, 2, 0), [0, 1, 1, 0]],
    ['FP64', 'FP32', Float64Array.of(0.1, -1e10, 1 / 3, 2), [0.1, -1e10, 1 / 3, 2].map(Math.fround)],
    ['FP32', 'FP64', Float32Array.of(0.1, -2, 0.5, 1e-3), [0.1, -2, 0.5, 1e-3].map(Math.fround)],
    ['FP32', 'FP16', Float32Array.of(1, -2, 0.5, 65504), [0x3c00, 0xc000, 0x3800, 0x7bff]],
    ['FP16', 'FP32', Uint16Array.of(0x3c00, 0xc000, 0x3800, 0x7bff), [1, -2, 0.5, 65504]],
    ['INT32', 'BYTES', Int32Array.of(-1, 0, 12, 300), ['-1', '0', '12', '300']],
  ];
  it.each(casts)('castModel(%s -> %s)', async (from, to, data, expected) => {
    const out = await runModel(castModel(from, to), { x: new ort.Tensor(ORT_TYPE[from], data, [2, 2]) });
    expect(out.y.type).toBe(ORT_TYPE[to]);
    expect(out.y.dims).toEqual([2, 2]);
    const got = Array.from(out.y.data as ArrayLike<unknown>, (v) => (typeof v === 'boolean' ? Number(v) : v));
    expect(got).toEqual(expected);
  });
});

describe('writeModel', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ensemble-fixtures-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the bytes and returns their sha256; generators are deterministic', async () => {
    const { path, sha256 } = writeModel(join(dir, 'nested'), 'skip.onnx', skipConnectionModel());
    expect(path).toBe(join(dir, 'nested', 'skip.onnx'));
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(sha256Hex(readFileSync(path))).toBe(sha256);
    expect(sha256).toBe(sha256Hex(skipConnectionModel()));
    expect(sha256Hex(slowModel(4, 32))).toBe(sha256Hex(slowModel(4, 32)));
    const out = await runModel(path, { x: f32([1, SKIP_DIM], new Array(SKIP_DIM).fill(0)) });
    expect(out.y.dims).toEqual([1, SKIP_DIM]);
  });
});
