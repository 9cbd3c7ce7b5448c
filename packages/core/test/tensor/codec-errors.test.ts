import { describe, expect, it } from 'vitest';
import { BadRequestError, EnsembleError } from '../../src/errors.js';
import { decodeInferRequest, decodeInferResponse, encodeInferRequest } from '../../src/tensor/codec.js';
import { SAMPLES } from './samples.js';

const utf8 = new TextEncoder();

/** Decode a request whose JSON is `json` (plus optional binary blobs after it) and return the error. */
function errorOf(json: unknown, blobs?: number[]): BadRequestError {
  const header = utf8.encode(typeof json === 'string' ? json : JSON.stringify(json));
  const body = blobs ? Buffer.concat([header, Buffer.from(blobs)]) : header;
  try {
    decodeInferRequest(body, blobs ? header.byteLength : undefined);
  } catch (e) {
    expect(e).toBeInstanceOf(BadRequestError);
    expect((e as BadRequestError).code).toBe('invalid_input');
    return e as BadRequestError;
  }
  throw new Error('expected decodeInferRequest to throw');
}

const one = (input: Record<string, unknown>) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], ...input }] });

describe('decodeInferRequest rejects bad requests with BadRequestError', () => {
  it('malformed JSON, wrong top-level shapes', () => {
    expect(errorOf('{"inputs": [').message).toMatch(/malformed JSON/);
    expect(errorOf('[1, 2]').message).toMatch(/JSON object/);
    expect(errorOf({ id: 'a' }).message).toMatch(/missing 'inputs'/);
    expect(errorOf({ inputs: {} }).message).toMatch(/missing 'inputs'/);
    expect(errorOf({ inputs: [], id: 5 }).message).toMatch(/id must be a string/);
    expect(errorOf({ inputs: [], parameters: 1 }).message).toMatch(/parameters must be a JSON object/);
    expect(errorOf({ inputs: [], parameters: { binary_data_output: 'yes' } }).message).toMatch(/binary_data_output/);
    expect(errorOf({ inputs: [], outputs: [{ name: 'y' }, { name: 'y' }] }).message).toMatch(/output 'y': duplicate/);
    expect(errorOf({ inputs: [], outputs: [{ name: 'y', parameters: { binary_data: 1 } }] }).message)
      .toMatch(/output 'y': binary_data must be a boolean/);
    expect(errorOf({ inputs: [7] }).message).toMatch(/input #0/);
    expect(errorOf({ inputs: [{ datatype: 'FP32', shape: [1], data: [1] }] }).message).toMatch(/input #0: name/);
  });

  it('unknown datatype', () => {
    expect(errorOf(one({ datatype: 'FLOAT32', data: [1] })).message).toMatch(/input 'x': unknown datatype "FLOAT32"/);
    expect(errorOf(one({ datatype: undefined, data: [1] })).message).toMatch(/input 'x': unknown datatype/);
    // The protocol's BF16 is a known name this server does not take, and says so.
    expect(errorOf(one({ datatype: 'BF16', data: [1] })).message).toMatch(/input 'x': datatype BF16 is not supported by this server/);
  });

  it('bad shapes', () => {
    expect(errorOf(one({ shape: [-1], data: [1] })).message).toMatch(/input 'x': .*invalid dim -1/);
    expect(errorOf(one({ shape: [1.5], data: [1] })).message).toMatch(/input 'x': .*invalid dim 1.5/);
    expect(errorOf(one({ shape: ['1'], data: [1] })).message).toMatch(/input 'x': .*invalid dim "1"/);
    expect(errorOf(one({ shape: 1, data: [1] })).message).toMatch(/input 'x': shape must be an array/);
  });

  it('element count does not match the shape', () => {
    expect(errorOf(one({ shape: [2, 2], data: [1, 2, 3] })).message).toMatch(/input 'x': shape \[2, 2\] needs 4 elements but data has 3/);
    expect(errorOf(one({ shape: [2], data: [[1, 2], [3, 4]] })).message).toMatch(/input 'x': .*needs 2 elements but data has 4/);
    expect(errorOf(one({ data: 1 })).message).toMatch(/input 'x': data must be an array/);
  });

  it('ragged nested data', () => {
    expect(errorOf(one({ shape: [2, 2], data: [[1, 2], [3]] })).message).toMatch(/input 'x': nested data is ragged/);
    expect(errorOf(one({ shape: [3], data: [[1, 2], 3] })).message).toMatch(/input 'x': nested data is ragged/);
  });

  it('wrong JSON type for the datatype', () => {
    expect(errorOf(one({ data: ['1.5'] })).message).toMatch(/input 'x': element 0 is "1.5", expected a number/);
    expect(errorOf(one({ data: [null] })).message).toMatch(/input 'x': element 0 is null/);
    expect(errorOf(one({ datatype: 'BOOL', data: ['true'] })).message).toMatch(/input 'x': .*expected a boolean/);
    expect(errorOf(one({ datatype: 'BOOL', data: [2] })).message).toMatch(/input 'x': .*expected a boolean/);
    expect(errorOf(one({ datatype: 'BYTES', data: [1] })).message).toMatch(/input 'x': .*expected a string/);
    expect(errorOf(one({ datatype: 'INT32', data: [1.5] })).message).toMatch(/input 'x': .*expected an integer/);
    expect(errorOf(one({ datatype: 'INT32', data: ['1'] })).message).toMatch(/input 'x': .*expected an integer/);
    expect(errorOf(one({ datatype: 'INT64', data: ['1e3'] })).message).toMatch(/input 'x': .*expected an integer/);
    expect(errorOf(one({ datatype: 'INT64', data: [true] })).message).toMatch(/input 'x': .*expected an integer/);
  });

  it('integers out of range for the datatype', () => {
    const cases: [string, unknown][] = [
      ['UINT8', 256], ['UINT8', -1], ['INT8', 128], ['INT8', -129], ['UINT16', 65536], ['INT16', -32769],
      ['UINT32', 2 ** 32], ['INT32', 2 ** 31], ['UINT64', '-1'], ['UINT64', '18446744073709551616'],
      ['INT64', '9223372036854775808'], ['INT64', '-9223372036854775809'],
    ];
    for (const [datatype, v] of cases) {
      expect(errorOf(one({ datatype, data: [v] })).message, `${datatype} ${String(v)}`).toMatch(/input 'x': .*out of range/);
    }
    // Written as numbers, beyond the 64-bit ranges (read exactly, not through a double).
    for (const [datatype, v] of [['INT64', '9223372036854775808'], ['INT64', '-9223372036854775809'], ['UINT64', '18446744073709551616'], ['UINT64', '-1'], ['INT64', '1' + '0'.repeat(60)]]) {
      expect(errorOf(`{"inputs":[{"name":"x","datatype":"${datatype}","shape":[1],"data":[${v}]}]}`).message, `${datatype} ${v}`)
        .toMatch(/input 'x': element 0 is .*out of range for/);
    }
    // An integer written as a float (exponent) cannot be exact.
    expect(errorOf('{"inputs":[{"name":"x","datatype":"INT64","shape":[1],"data":[1e17]}]}').message).toMatch(/input 'x': .*written as a float/);
  });

  it('duplicate input names', () => {
    const x = { name: 'x', datatype: 'INT8', shape: [1], data: [1] };
    expect(errorOf({ inputs: [x, x] }).message).toMatch(/input 'x': duplicate input name/);
  });

  it('data and binary_data_size together, or neither', () => {
    expect(errorOf(one({ data: [1], parameters: { binary_data_size: 4 } }), [0, 0, 0, 0]).message)
      .toMatch(/input 'x': has both data and binary_data_size/);
    expect(errorOf(one({})).message).toMatch(/input 'x': has neither data nor binary_data_size/);
  });

  it('binary sizes that do not add up to the body', () => {
    const bin = (size: unknown) => one({ parameters: { binary_data_size: size } });
    expect(errorOf(bin(4), [0, 0, 0, 0, 9]).message)
      .toMatch(/binary inputs 'x' \(4 bytes\) add up to 4 bytes, but the body has 5 bytes after the \d+-byte JSON header/);
    expect(errorOf(bin(4), [0, 0]).message).toMatch(/'x' \(4 bytes\) add up to 4 bytes, but the body has 2/);
    expect(errorOf(one({ data: [1] }), [1, 2]).message).toMatch(/no input has binary_data_size, but the body has 2 bytes/);
    expect(errorOf(bin(-4), []).message).toMatch(/input 'x': binary_data_size must be a non-negative integer/);
    expect(errorOf(bin('4'), [0, 0, 0, 0]).message).toMatch(/input 'x': binary_data_size must be/);
    // binary_data_size but no Inference-Header-Content-Length: the whole body was JSON.
    expect(errorOf(bin(4)).message).toMatch(/input 'x': binary_data_size is set but there is no Inference-Header-Content-Length/);
  });

  it('binary blobs of the wrong size for the shape, and broken BYTES blobs', () => {
    expect(errorOf(one({ shape: [2], parameters: { binary_data_size: 4 } }), [0, 0, 0, 0]).message)
      .toMatch(/input 'x': binary_data_size is 4 bytes but 2 FP32 elements need 8/);
    const s = (size: number, shape = [1]) => one({ datatype: 'BYTES', shape, parameters: { binary_data_size: size } });
    expect(errorOf(s(6), [5, 0, 0, 0, 0x61, 0x62]).message).toMatch(/input 'x': binary BYTES element 0 claims 5 bytes/);
    expect(errorOf(s(6), [1, 0, 0, 0, 0x61, 0x62]).message).toMatch(/input 'x': .*1 bytes left over/);
    expect(errorOf(s(6, [2]), [1, 0, 0, 0, 0x61, 0x62]).message).toMatch(/input 'x': .*too small for 2 BYTES elements|ends before element 1/);
    expect(errorOf(s(2), [0, 0]).message).toMatch(/input 'x': .*too small for 1 BYTES elements/);
  });

  it('a header length that does not fit the body', () => {
    const body = encodeInferRequest({ x: SAMPLES.FP32 }).body;
    expect(() => decodeInferRequest(body, body.byteLength + 1)).toThrow(BadRequestError);
    expect(() => decodeInferRequest(body, body.byteLength + 1)).toThrow(/does not fit a body/);
    expect(() => decodeInferRequest(body, 10)).toThrow(/malformed JSON/);
  });

  it('reports the failing input among several', () => {
    const err = errorOf({
      inputs: [
        { name: 'good', datatype: 'INT8', shape: [1], data: [1] },
        { name: 'image', datatype: 'UINT8', shape: [2], data: [1, 300] },
      ],
    });
    expect(err.message).toMatch(/^input 'image': element 1 is 300, out of range for UINT8$/);
  });
});

describe('client-side errors', () => {
  it('decodeInferResponse throws a 502 EnsembleError for an unreadable response', () => {
    const bad = (json: unknown) => () => decodeInferResponse(utf8.encode(JSON.stringify(json)));
    expect(bad({ error: 'boom' })).toThrow(/model_name/);
    expect(bad({ model_name: 'm' })).toThrow(/missing 'outputs'/);
    expect(bad({ model_name: 'm', outputs: [{ name: 'y', datatype: 'FP32', shape: [2], data: [1] }] }))
      .toThrow(/output 'y': shape \[2\] needs 2 elements/);
    let caught: unknown;
    try {
      bad({ model_name: 'm', outputs: [{ name: 'y', datatype: 'X', shape: [], data: [1] }] })();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(EnsembleError);
    expect(caught).not.toBeInstanceOf(BadRequestError);
    expect((caught as EnsembleError).code).toBe('bad_gateway');
    expect((caught as EnsembleError).message).toMatch(/output 'y': unknown datatype "X"/);
  });

  it('encodeInferRequest rejects malformed tensors', () => {
    expect(() => encodeInferRequest({ x: { datatype: 'FP32', shape: [3], data: new Float32Array(2) } }))
      .toThrow(/input 'x': shape \[3\] needs 3 elements but data has 2/);
    expect(() => encodeInferRequest({ x: { datatype: 'FP32', shape: [2], data: new Float64Array(2) } }))
      .toThrow(/input 'x': data storage does not match datatype FP32/);
  });
});
