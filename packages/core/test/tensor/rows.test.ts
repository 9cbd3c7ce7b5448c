import { describe, expect, it } from 'vitest';
import { EnsembleError } from '../../src/errors.js';
import { concatRows, emptyRows, moveBatchAxis, splitAlong, splitRows, stackAlong, stackRows } from '../../src/tensor/rows.js';
import type { Tensor } from '../../src/tensor/types.js';
import { bytes, SAMPLES, sameTensor, show } from './samples.js';

const td = new TextDecoder();
const strings = (t: Tensor) => (t.data as Uint8Array[]).map((e) => td.decode(e));

describe('splitRows', () => {
  it('drops dim 0 and copies each row', () => {
    const t: Tensor = { datatype: 'FP32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) };
    const rows = splitRows(t);
    expect(rows.map((r) => r.shape)).toEqual([[3], [3]]);
    expect(Array.from(rows[1].data as Float32Array)).toEqual([4, 5, 6]);
    (rows[0].data as Float32Array)[0] = 99;
    expect((t.data as Float32Array)[0]).toBe(1);
    expect((rows[0].data as Float32Array).buffer).not.toBe((rows[1].data as Float32Array).buffer);
  });

  it('turns a rank-1 tensor into scalars', () => {
    const rows = splitRows({ datatype: 'INT64', shape: [3], data: new BigInt64Array([1n, -(2n ** 62n), 3n]) });
    expect(rows.map((r) => r.shape)).toEqual([[], [], []]);
    expect((rows[1].data as BigInt64Array)[0]).toBe(-(2n ** 62n));
  });

  it('splits BYTES and zero-row tensors', () => {
    const rows = splitRows({ datatype: 'BYTES', shape: [2, 2], data: bytes('a', 'b', '', 'é') });
    expect(rows.map(strings)).toEqual([['a', 'b'], ['', 'é']]);
    expect(splitRows(emptyRows('FP32', [4]))).toEqual([]);
  });

  it('rejects a scalar', () => {
    expect(() => splitRows({ datatype: 'FP32', shape: [], data: new Float32Array(1) })).toThrow(EnsembleError);
  });

  it('split then stack gives back every sample tensor', () => {
    for (const t of Object.values(SAMPLES)) {
      const back = stackRows(splitRows(t));
      expect(sameTensor(back, t), `${show(t)} vs ${show(back)}`).toBe(true);
    }
  });
});

describe('stackRows', () => {
  it('adds dim 0', () => {
    const a: Tensor = { datatype: 'INT32', shape: [2], data: new Int32Array([1, 2]) };
    const b: Tensor = { datatype: 'INT32', shape: [2], data: new Int32Array([3, 4]) };
    const s = stackRows([a, b]);
    expect(s.shape).toEqual([2, 2]);
    expect(Array.from(s.data as Int32Array)).toEqual([1, 2, 3, 4]);
    const scalars = stackRows([{ datatype: 'FP64', shape: [], data: new Float64Array([7]) }]);
    expect(scalars.shape).toEqual([1]);
  });

  it('pads the last axis at the end with padValue', () => {
    // items [2, w]: w = 1, 3, 2
    const item = (w: number, base: number): Tensor => ({
      datatype: 'FP32', shape: [2, w], data: Float32Array.from({ length: 2 * w }, (_, i) => base + i),
    });
    const s = stackRows([item(1, 10), item(3, 20), item(2, 30)], { padAxis: 1, padValue: -1 });
    expect(s.shape).toEqual([3, 2, 3]);
    expect(Array.from(s.data as Float32Array)).toEqual([
      10, -1, -1, 11, -1, -1,
      20, 21, 22, 23, 24, 25,
      30, 31, -1, 32, 33, -1,
    ]);
  });

  it('pads an inner axis, with a zero-length part', () => {
    // items [h, 2]: h = 2, 0
    const a: Tensor = { datatype: 'UINT8', shape: [2, 2], data: new Uint8Array([1, 2, 3, 4]) };
    const b: Tensor = { datatype: 'UINT8', shape: [0, 2], data: new Uint8Array(0) };
    const s = stackRows([b, a], { padAxis: 0 });
    expect(s.shape).toEqual([2, 2, 2]);
    expect(Array.from(s.data as Uint8Array)).toEqual([0, 0, 0, 0, 1, 2, 3, 4]);
  });

  it('pads BYTES with empty strings, FP16 with half bits, INT64 with bigints', () => {
    const s = stackRows([
      { datatype: 'BYTES', shape: [1], data: bytes('x') },
      { datatype: 'BYTES', shape: [3], data: bytes('a', 'bé', 'c') },
    ], { padAxis: 0 });
    expect(s.shape).toEqual([2, 3]);
    expect(strings(s)).toEqual(['x', '', '', 'a', 'bé', 'c']);

    const h = stackRows([
      { datatype: 'FP16', shape: [1], data: new Uint16Array([0x4000]) },
      { datatype: 'FP16', shape: [2], data: new Uint16Array([0x4000, 0x4000]) },
    ], { padAxis: 0, padValue: 1 });
    expect(Array.from(h.data as Uint16Array)).toEqual([0x4000, 0x3c00, 0x4000, 0x4000]);

    const i = stackRows([
      { datatype: 'INT64', shape: [2], data: new BigInt64Array([2n ** 60n, 1n]) },
      { datatype: 'INT64', shape: [1], data: new BigInt64Array([-3n]) },
    ], { padAxis: 0, padValue: -7 });
    expect(Array.from(i.data as BigInt64Array)).toEqual([2n ** 60n, 1n, -3n, -7n]);

    const bools = stackRows([
      { datatype: 'BOOL', shape: [1], data: new Uint8Array([0]) },
      { datatype: 'BOOL', shape: [2], data: new Uint8Array([0, 0]) },
    ], { padAxis: 0, padValue: 5 });
    expect(Array.from(bools.data as Uint8Array)).toEqual([0, 1, 0, 0]);
  });

  it('rejects mismatched parts with EnsembleError', () => {
    const a: Tensor = { datatype: 'FP32', shape: [2, 2], data: new Float32Array(4) };
    const wider: Tensor = { datatype: 'FP32', shape: [2, 3], data: new Float32Array(6) };
    expect(() => stackRows([])).toThrow(EnsembleError);
    expect(() => stackRows([a, wider])).toThrow(/part 1 has shape \[2, 3\]/);
    expect(() => stackRows([a, wider], { padAxis: 0 })).toThrow(/only axis 0 may differ/);
    expect(() => stackRows([a, { ...a, datatype: 'FP64', data: new Float64Array(4) }])).toThrow(/datatype FP64/);
    expect(() => stackRows([a, { datatype: 'FP32', shape: [4], data: new Float32Array(4) }])).toThrow(/ranks differ/);
    expect(() => stackRows([a], { padAxis: 2 })).toThrow(/pad axis 2/);
    expect(() => stackRows([a, { ...a, data: new Float32Array(3) }])).toThrow(/needs 4 elements/);
  });
});

describe('emptyRows', () => {
  it('has zero rows and concrete item dims', () => {
    const e = emptyRows('BYTES', [-1, 3]);
    expect(e.shape).toEqual([0, 0, 3]);
    expect(e.data).toEqual([]);
    expect(emptyRows('UINT64', [2]).data).toBeInstanceOf(BigUint64Array);
  });
});

describe('concatRows', () => {
  it('concatenates along dim 0', () => {
    const a: Tensor = { datatype: 'UINT64', shape: [1, 2], data: new BigUint64Array([1n, 2n ** 64n - 1n]) };
    const b: Tensor = { datatype: 'UINT64', shape: [2, 2], data: new BigUint64Array([3n, 4n, 5n, 6n]) };
    const c = concatRows([a, emptyRows('UINT64', [2]), b]);
    expect(c.shape).toEqual([3, 2]);
    expect(Array.from(c.data as BigUint64Array)).toEqual([1n, 2n ** 64n - 1n, 3n, 4n, 5n, 6n]);
  });

  it('concatenates BYTES', () => {
    const c = concatRows([
      { datatype: 'BYTES', shape: [1], data: bytes('😀') },
      { datatype: 'BYTES', shape: [2], data: bytes('', 'z') },
    ]);
    expect(c.shape).toEqual([3]);
    expect(strings(c)).toEqual(['😀', '', 'z']);
  });

  it('rejects mismatches with EnsembleError', () => {
    const a: Tensor = { datatype: 'INT8', shape: [1, 2], data: new Int8Array(2) };
    expect(() => concatRows([])).toThrow(EnsembleError);
    expect(() => concatRows([a, { datatype: 'INT8', shape: [1, 3], data: new Int8Array(3) }])).toThrow(/only dim 0 may differ/);
    expect(() => concatRows([a, { datatype: 'UINT8', shape: [1, 2], data: new Uint8Array(2) }])).toThrow(/datatype UINT8/);
    expect(() => concatRows([{ datatype: 'INT8', shape: [], data: new Int8Array(1) }])).toThrow(/scalar/);
  });
});

describe('splitAlong / stackAlong: a batch axis other than 0', () => {
  // [2, batch=3, 2]: element (a, b, c) holds 100a + 10b + c.
  const state: Tensor = {
    datatype: 'FP32', shape: [2, 3, 2],
    data: Float32Array.from({ length: 12 }, (_, k) => 100 * Math.floor(k / 6) + 10 * (Math.floor(k / 2) % 3) + (k % 2)),
  };

  it('cuts items along the axis, dropping it', () => {
    const items = splitAlong(state, 1);
    expect(items.map((t) => t.shape)).toEqual([[2, 2], [2, 2], [2, 2]]);
    expect(Array.from(items[2].data as Float32Array)).toEqual([20, 21, 120, 121]);
    expect(splitAlong(state, 1, 1, 2).map((t) => Array.from(t.data as Float32Array))).toEqual([[10, 11, 110, 111]]);
  });

  it('stacks them back along the same axis into the tensor they came from', () => {
    const back = stackAlong(splitAlong(state, 1), 1);
    expect(back.shape).toEqual([2, 3, 2]);
    expect(Array.from(back.data as Float32Array)).toEqual(Array.from(state.data as Float32Array));
  });

  it('moves the item axis of a dim-0 batch to the last axis too', () => {
    const rows = splitRows({ datatype: 'INT32', shape: [2, 3], data: Int32Array.of(1, 2, 3, 4, 5, 6) });
    const moved = moveBatchAxis(stackRows(rows), 1);
    expect(moved.shape).toEqual([3, 2]);
    expect(Array.from(moved.data as Int32Array)).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it('refuses an axis the tensor does not have', () => {
    expect(() => splitAlong(state, 3)).toThrow(/axis 3 is not an axis of shape \[2, 3, 2\]/);
  });
});
