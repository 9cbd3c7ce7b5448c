import { describe, expect, it } from 'vitest';
import { floatAttr, GraphBuilder, tensorAttr } from '../../src/onnx/builder.js';
import { decodeModel, int64ToNumber, onnx } from '../../src/onnx/proto.js';
import { sha256Hex } from '../../../core/test/fixtures/models.js';
import { ort, runModel } from '../../../core/test/fixtures/ort.js';

const T = onnx.AttributeProto.AttributeType;

function dense(weight: number): Uint8Array {
  return new GraphBuilder('dense')
    .input('x', 'FP32', ['batch', 2])
    .output('y', 'FP32', ['batch', 2])
    .initializer('w', 'FP32', [2, 2], Float32Array.of(1, 2, 3, weight))
    .node('MatMul', ['x', 'w'], ['y'])
    .build();
}

describe('GraphBuilder', () => {
  it('gives identical bytes for identical calls, different bytes for different weights', () => {
    expect(sha256Hex(dense(4))).toBe(sha256Hex(dense(4)));
    expect(sha256Hex(dense(4))).not.toBe(sha256Hex(dense(5)));
  });

  it('writes the opset, IR version, producer and symbolic dims', () => {
    const model = decodeModel(
      new GraphBuilder('g')
        .input('x', 'INT64', ['batch', 3])
        .output('y', 'INT64', ['batch', 3])
        .node('Identity', ['x'], ['y'])
        .build({ opset: 13, irVersion: 7, producer: 'me' }),
    );
    expect(int64ToNumber(model.irVersion)).toBe(7);
    expect(model.opsetImport.map((o) => [o.domain, int64ToNumber(o.version)])).toEqual([['', 13]]);
    expect(model.producerName).toBe('me');
    const input = (model.graph as onnx.GraphProto).input[0];
    expect(input.type!.tensorType!.elemType).toBe(onnx.TensorProto.DataType.INT64);
    const dims = input.type!.tensorType!.shape!.dim!;
    expect(dims[0].dimParam).toBe('batch');
    expect(int64ToNumber(dims[1].dimValue)).toBe(3);
    expect((model.graph as onnx.GraphProto).node[0].name).toBe('Identity_0');
  });

  it('types attributes: integral numbers INT, fractions FLOAT, floatAttr FLOAT, arrays INTS/FLOATS, strings, tensors', () => {
    const model = decodeModel(
      new GraphBuilder('attrs')
        .input('x', 'FP32', [1])
        .output('y', 'FP32', [1])
        .node('Identity', ['x'], ['y'], {
          i: 3, f: 0.5, forced: floatAttr(1), ints: [1, 2], floats: [0.5, 1], f32: Float32Array.of(1, 2),
          s: 'hello', ss: ['a', 'b'], t: tensorAttr('INT32', [2], Int32Array.of(7, 8)),
        })
        .build(),
    );
    const attrs = Object.fromEntries((model.graph as onnx.GraphProto).node[0].attribute!.map((a) => [a.name, a]));
    expect(attrs.i.type).toBe(T.INT);
    expect(int64ToNumber(attrs.i.i)).toBe(3);
    expect(attrs.f.type).toBe(T.FLOAT);
    expect(attrs.f.f).toBe(0.5);
    expect(attrs.forced.type).toBe(T.FLOAT);
    expect(attrs.forced.f).toBe(1);
    expect(attrs.ints.type).toBe(T.INTS);
    expect(attrs.ints.ints.map(int64ToNumber)).toEqual([1, 2]);
    expect(attrs.floats.type).toBe(T.FLOATS);
    expect(attrs.floats.floats).toEqual([0.5, 1]);
    expect(attrs.f32.type).toBe(T.FLOATS);
    expect(attrs.s.type).toBe(T.STRING);
    expect(new TextDecoder().decode(attrs.s.s)).toBe('hello');
    expect(attrs.ss.type).toBe(T.STRINGS);
    expect(attrs.t.type).toBe(T.TENSOR);
    expect(Array.from(new Int32Array(attrs.t.t!.rawData.slice().buffer))).toEqual([7, 8]);
  });

  it('builds models with float and tensor attributes that onnxruntime runs', async () => {
    // Gemm's alpha must be a FLOAT even when it is 2; Constant takes a TENSOR.
    const bytes = new GraphBuilder('gemm')
      .input('a', 'FP32', [1, 2])
      .output('y', 'FP32', [1, 2])
      .node('Constant', [], ['b'], { value: tensorAttr('FP32', [2, 2], [1, 0, 0, 1]) })
      .node('Constant', [], ['c'], { value: tensorAttr('FP32', [2], [10, 20]) })
      .node('Gemm', ['a', 'b', 'c'], ['y'], { alpha: floatAttr(2), beta: 0.5 })
      .build();
    const out = await runModel(bytes, { a: new ort.Tensor('float32', Float32Array.of(3, 4), [1, 2]) });
    expect(Array.from(out.y.data as Float32Array)).toEqual([2 * 3 + 5, 2 * 4 + 10]);
  });

  it('accepts number[] data and converts it to the datatype', async () => {
    const bytes = new GraphBuilder('add_i64')
      .input('x', 'INT64', [3])
      .output('y', 'INT64', [3])
      .initializer('k', 'INT64', [3], [1, -2, 3])
      .node('Add', ['x', 'k'], ['y'])
      .build();
    const out = await runModel(bytes, { x: new ort.Tensor('int64', BigInt64Array.of(10n, 20n, 2n ** 60n), [3]) });
    expect(Array.from(out.y.data as BigInt64Array)).toEqual([11n, 18n, 2n ** 60n + 3n]);
  });

  it('rejects data that does not match the dims or the datatype', () => {
    const g = new GraphBuilder('bad');
    expect(() => g.initializer('w', 'FP32', [2, 3], new Float32Array(5))).toThrow(/5 values for dims \[2, 3\] \(6 elements\)/);
    expect(() => g.initializer('w', 'FP32', [2], new Float64Array(2))).toThrow(/FP32 data must be a Float32Array, got Float64Array/);
    expect(() => g.initializer('w', 'INT64', [1], new Int32Array(1))).toThrow(/BigInt64Array/);
    expect(() => g.input('x', 'FP32', [-1])).toThrow(/bad dimension -1/);
  });

  it('rejects graphs that read unknown tensors, produce a name twice or leave an output unproduced', () => {
    const reads = new GraphBuilder('g').input('x', 'FP32', [1]).output('y', 'FP32', [1]).node('Add', ['x', 'z'], ['y']);
    expect(() => reads.build()).toThrow(/node 'Add_0' reads 'z' before anything produces it/);
    const twice = new GraphBuilder('g').input('x', 'FP32', [1]).output('y', 'FP32', [1])
      .node('Relu', ['x'], ['y']).node('Relu', ['x'], ['y']);
    expect(() => twice.build()).toThrow(/'y' is produced twice/);
    const missing = new GraphBuilder('g').input('x', 'FP32', [1]).output('y', 'FP32', [1]).node('Relu', ['x'], ['z']);
    expect(() => missing.build()).toThrow(/output 'y' is not produced/);
    expect(() => new GraphBuilder('g').input('x', 'FP32', [1]).build()).toThrow(/no outputs/);
  });
});
