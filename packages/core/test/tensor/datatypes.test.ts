import { describe, expect, it } from 'vitest';
import { BadRequestError } from '../../src/errors.js';
import {
  allocate, bytesPerElement, checkTensor, elementCount, isDatatype, typedArrayFor,
} from '../../src/tensor/datatypes.js';
import { DATATYPES } from '../../src/tensor/types.js';

describe('datatypes', () => {
  it('counts elements', () => {
    expect(elementCount([])).toBe(1);
    expect(elementCount([2, 3, 4])).toBe(24);
    expect(elementCount([5, 0, 3])).toBe(0);
  });

  it('knows element widths and storage', () => {
    expect(bytesPerElement('BOOL')).toBe(1);
    expect(bytesPerElement('FP16')).toBe(2);
    expect(bytesPerElement('INT64')).toBe(8);
    expect(bytesPerElement('BYTES')).toBeUndefined();
    expect(allocate('FP16', 3)).toBeInstanceOf(Uint16Array);
    expect(allocate('UINT64', 2)).toBeInstanceOf(BigUint64Array);
    const b = allocate('BYTES', 2) as Uint8Array[];
    expect(b).toHaveLength(2);
    expect(b[0]).toHaveLength(0);
    for (const dt of DATATYPES) expect(isDatatype(dt)).toBe(true);
    expect(isDatatype('FLOAT32')).toBe(false);
    expect(isDatatype('fp32')).toBe(false);
  });

  it('checkTensor rejects bad tensors with a message naming them', () => {
    const ok = { datatype: 'FP32' as const, shape: [2, 2], data: new Float32Array(4) };
    expect(() => checkTensor(ok, 'input x')).not.toThrow();
    expect(() => checkTensor({ ...ok, shape: [3, 2] }, 'input x')).toThrow(BadRequestError);
    expect(() => checkTensor({ ...ok, shape: [3, 2] }, 'input x')).toThrow(/input x: .*6 elements but data has 4/);
    expect(() => checkTensor({ ...ok, shape: [-2, -2] }, 'input y')).toThrow(/input y: .*invalid dim -2/);
    expect(() => checkTensor({ ...ok, shape: [4, 1.0001] }, 'input z')).toThrow(/input z/);
    expect(() => checkTensor({ ...ok, data: new Float64Array(4) }, 'input w')).toThrow(/input w: data storage/);
    expect(() => checkTensor({ datatype: 'BYTES', shape: [1], data: [new Uint8Array(1)] }, 'b')).not.toThrow();
  });

  it('typedArrayFor copies from unaligned offsets, little-endian', () => {
    const buf = new Uint8Array([0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3f, 0xee]);
    const i32 = typedArrayFor('INT32', buf, 1, 1);
    expect(Array.from(i32 as Int32Array)).toEqual([1]);
    const f32 = typedArrayFor('FP32', buf.buffer, 5, 1);
    expect(Array.from(f32 as Float32Array)).toEqual([1.5]);
    const i64 = typedArrayFor('INT64', new Uint8Array([9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 1, 1);
    expect((i64 as BigInt64Array)[0]).toBe(-1n);
    // A copy, not a view: later writes to the source do not show through.
    buf[1] = 7;
    expect((i32 as Int32Array)[0]).toBe(1);
    expect(() => typedArrayFor('FP64', buf, 4, 1)).toThrow(/exceed/);
  });
});
