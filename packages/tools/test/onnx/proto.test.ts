import { describe, expect, it } from 'vitest';
import { EnsembleError } from '../../../core/src/errors.js';
import {
  bytesPerElement, datatypeFromOnnx, datatypeToOnnx, decodeModel, encodeModel, int64ToNumber, onnx, onnxDataTypeName,
} from '../../src/onnx/proto.js';
import { DATATYPES } from '../../../core/src/tensor/types.js';

describe('onnx/proto', () => {
  it('maps every datatype to an ONNX element type and back', () => {
    const codes = new Set<number>();
    for (const dt of DATATYPES) {
      const code = datatypeToOnnx(dt);
      codes.add(code);
      expect(datatypeFromOnnx(code)).toBe(dt);
    }
    expect(codes.size).toBe(DATATYPES.length);
    expect(datatypeToOnnx('FP32')).toBe(onnx.TensorProto.DataType.FLOAT);
    expect(datatypeToOnnx('BYTES')).toBe(onnx.TensorProto.DataType.STRING);
    expect(datatypeToOnnx('FP16')).toBe(onnx.TensorProto.DataType.FLOAT16);
    expect(datatypeToOnnx('FP64')).toBe(onnx.TensorProto.DataType.DOUBLE);
  });

  it('has no datatype for element types the protocol cannot carry', () => {
    expect(datatypeFromOnnx(onnx.TensorProto.DataType.BFLOAT16)).toBeNull();
    expect(datatypeFromOnnx(onnx.TensorProto.DataType.COMPLEX64)).toBeNull();
    expect(datatypeFromOnnx(0)).toBeNull();
    expect(onnxDataTypeName(16)).toBe('BFLOAT16');
    expect(onnxDataTypeName(99)).toBe('code 99');
  });

  it('knows element sizes', () => {
    expect(bytesPerElement('BOOL')).toBe(1);
    expect(bytesPerElement('FP16')).toBe(2);
    expect(bytesPerElement('INT32')).toBe(4);
    expect(bytesPerElement('UINT64')).toBe(8);
    expect(bytesPerElement('BYTES')).toBe(0);
  });

  it('round-trips a model and reads int64 fields as numbers', () => {
    const bytes = encodeModel({ irVersion: 8, producerName: 'x', opsetImport: [{ domain: '', version: 17 }] });
    expect(Buffer.isBuffer(bytes)).toBe(false);
    const model = decodeModel(bytes);
    expect(int64ToNumber(model.irVersion)).toBe(8);
    expect(int64ToNumber(model.opsetImport[0].version)).toBe(17);
    expect(model.producerName).toBe('x');
    expect(int64ToNumber(null)).toBe(0);
  });

  it('rejects bytes that are not a model with a 400', () => {
    let caught: unknown;
    try {
      decodeModel(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EnsembleError);
    expect((caught as EnsembleError).code).toBe('invalid_input');
    expect((caught as Error).message).toMatch(/not a valid ONNX model/);
  });
});
