import { describe, expect, it } from 'vitest';
import {
  decodeInferRequest, decodeInferResponse, encodeInferRequest, encodeInferResponse, parseHeaderLength,
  wantsBinaryOutput,
} from '../../src/tensor/codec.js';
import { jsonEncodable } from '../../src/tensor/json-data.js';
import type { InferRequestJson } from '../../src/tensor/protocol.js';
import { DATATYPES } from '../../src/tensor/types.js';
import type { Tensor } from '../../src/tensor/types.js';
import { bytes, SAMPLES, sameTensor, show } from './samples.js';

const utf8 = new TextEncoder();
const td = new TextDecoder();
const headerJson = (body: Uint8Array, headerLength?: number) =>
  JSON.parse(td.decode(headerLength === undefined ? body : body.subarray(0, headerLength)));

/** Move the body to an odd offset of a bigger buffer, as Node's pooled Buffers often are. */
function misaligned(body: Uint8Array): Uint8Array {
  const big = new Uint8Array(body.byteLength + 3);
  big.set(body, 3);
  return big.subarray(3);
}

describe.each(DATATYPES)('%s round trip', (dt) => {
  const t = SAMPLES[dt];

  it.each([false, true])('request, binary=%s', (binary) => {
    const enc = encodeInferRequest({ x: t }, { id: 'r1', binary });
    expect(enc.headerLength !== undefined).toBe(binary);
    const { request, tensors } = decodeInferRequest(misaligned(enc.body), enc.headerLength);
    expect(request.id).toBe('r1');
    expect(request.inputs).toEqual([
      { name: 'x', datatype: dt, shape: t.shape, ...(binary ? { parameters: { binary_data_size: expect.any(Number) } } : {}) },
    ]);
    expect(sameTensor(tensors.x, t), `${show(t)} vs ${show(tensors.x)}`).toBe(true);
  });

  it.each([false, true])('response, binary=%s', (binary) => {
    const enc = encodeInferResponse({ model_name: 'm', model_version: '1', id: 'r1' }, [{ name: 'y', tensor: t, binary }]);
    expect(enc.headerLength !== undefined).toBe(binary);
    const { response, tensors } = decodeInferResponse(misaligned(enc.body), enc.headerLength);
    expect(response.model_name).toBe('m');
    expect(response.model_version).toBe('1');
    expect(response.id).toBe('r1');
    expect(sameTensor(tensors.y, t), `${show(t)} vs ${show(tensors.y)}`).toBe(true);
  });
});

describe('wire forms', () => {
  it('writes JSON elements the way clients expect', () => {
    const out = (name: keyof typeof SAMPLES) => {
      const enc = encodeInferResponse({ model_name: 'm' }, [{ name: 'y', tensor: SAMPLES[name], binary: false }]);
      return headerJson(enc.body).outputs[0].data;
    };
    expect(out('BOOL')).toEqual([true, false, false, true]);
    // 64-bit integers are JSON numbers with every digit, as Triton writes them (JSON.parse would round them: read the text).
    const text = (name: keyof typeof SAMPLES) => {
      const enc = encodeInferResponse({ model_name: 'm' }, [{ name: 'y', tensor: SAMPLES[name], binary: false }]);
      return /"data":(\[[^\]]*\])/.exec(new TextDecoder().decode(enc.body))![1];
    };
    expect(text('INT64')).toBe('[-9223372036854775808,-9007199254740993,-5,42,9007199254740993,9223372036854775807]');
    expect(text('UINT64')).toBe('[0,1,9007199254740991,9007199254740993,18446744073709551615]');
    expect(out('FP32').slice(6)).toEqual(['NaN', 'Infinity', '-Infinity']);
    expect(out('FP16')).toEqual([1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 'Infinity', '-Infinity', 'NaN', 0.333251953125]);
    expect(out('BYTES')).toEqual(['', 'hello', 'héllo wörld', '日本語', '😀 emoji', 'nul\u0000inside']);
  });

  it('writes binary blobs in Triton layout', () => {
    const enc = encodeInferResponse({ model_name: 'm' }, [
      { name: 's', tensor: { datatype: 'BYTES', shape: [2], data: bytes('ab', '') }, binary: true },
      { name: 'i', tensor: { datatype: 'INT16', shape: [2], data: new Int16Array([1, -2]) }, binary: true },
      { name: 'b', tensor: { datatype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) }, binary: true },
    ]);
    const header = headerJson(enc.body, enc.headerLength);
    expect(header.outputs.map((o: { parameters: unknown }) => o.parameters)).toEqual([
      { binary_data_size: 10 }, { binary_data_size: 4 }, { binary_data_size: 2 },
    ]);
    expect(header.outputs[0].data).toBeUndefined();
    expect(Array.from(enc.body.subarray(enc.headerLength))).toEqual([
      2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0, // BYTES: u32 LE length + bytes, per element
      1, 0, 0xfe, 0xff, // INT16 little-endian
      1, 0, // BOOL one byte each
    ]);
  });

  it('JSON loses only the sign of zero (JSON.stringify writes -0 as 0); binary keeps it', () => {
    const t: Tensor = { datatype: 'FP32', shape: [1], data: new Float32Array([-0]) };
    const json = decodeInferRequest(encodeInferRequest({ x: t }).body).tensors.x;
    expect(Object.is((json.data as Float32Array)[0], 0)).toBe(true);
    const enc = encodeInferRequest({ x: t }, { binary: true });
    const bin = decodeInferRequest(enc.body, enc.headerLength).tensors.x;
    expect(Object.is((bin.data as Float32Array)[0], -0)).toBe(true);
  });

  it('BYTES that are not UTF-8 must go binary', () => {
    const t: Tensor = { datatype: 'BYTES', shape: [2], data: [new Uint8Array([0xff, 0xfe]), utf8.encode('ok')] };
    expect(jsonEncodable(t)).toBe(false);
    expect(jsonEncodable(SAMPLES.BYTES)).toBe(true);
    expect(() => encodeInferResponse({ model_name: 'm' }, [{ name: 'raw', tensor: t, binary: false }])).toThrow(/output 'raw'.*UTF-8/);
    const enc = encodeInferResponse({ model_name: 'm' }, [{ name: 'raw', tensor: t, binary: true }]);
    expect(sameTensor(decodeInferResponse(enc.body, enc.headerLength).tensors.raw, t)).toBe(true);
  });
});

describe('decoding requests from other clients', () => {
  it('accepts nested JSON data, 0/1 booleans, integer strings and float strings', () => {
    const body = utf8.encode(JSON.stringify({
      inputs: [
        { name: 'n', datatype: 'INT32', shape: [2, 3], data: [[1, 2, 3], [4, 5, 6]] },
        { name: 'deep', datatype: 'FP32', shape: [2, 1, 2], data: [[[1, 2]], [[3, 'NaN']]] },
        { name: 'flag', datatype: 'BOOL', shape: [3], data: [1, false, true] },
        { name: 'big', datatype: 'UINT64', shape: [2], data: ['18446744073709551615', 7] },
        { name: 'half', datatype: 'FP16', shape: [2], data: [0.1, 'Infinity'] },
        { name: 'empty', datatype: 'FP32', shape: [0, 3], data: [] },
        { name: 'scalar', datatype: 'INT8', shape: [], data: [-3] },
      ],
    }));
    const { tensors } = decodeInferRequest(body);
    expect(tensors.n.shape).toEqual([2, 3]);
    expect(Array.from(tensors.n.data as Int32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(tensors.deep.data as Float32Array)).toEqual([1, 2, 3, NaN]);
    expect(Array.from(tensors.flag.data as Uint8Array)).toEqual([1, 0, 1]);
    expect(Array.from(tensors.big.data as BigUint64Array)).toEqual([2n ** 64n - 1n, 7n]);
    expect(Array.from(tensors.half.data as Uint16Array)).toEqual([0x2e66, 0x7c00]);
    expect(tensors.empty.data).toBeInstanceOf(Float32Array);
    expect(tensors.empty.data).toHaveLength(0);
    expect(Array.from(tensors.scalar.data as Int8Array)).toEqual([-3]);
  });

  it('mixes JSON and binary inputs in one request, blobs in the order of the binary inputs', () => {
    const f: Tensor = { datatype: 'FP64', shape: [2], data: new Float64Array([Math.PI, -1]) };
    const inputs: Record<string, Tensor> = { a: SAMPLES.INT64, b: SAMPLES.BYTES, c: f, d: SAMPLES.FP16, e: SAMPLES.BOOL };
    const enc = encodeInferRequest(inputs, {
      binary: ['b', 'd', 'e'],
      outputs: [{ name: 'y', binary: true }, { name: 'z' }],
      parameters: { binary_data_output: false, custom: 3 },
    });
    const { request, tensors } = decodeInferRequest(misaligned(enc.body), enc.headerLength);
    expect(request.inputs.map((i) => [i.name, i.parameters?.binary_data_size !== undefined])).toEqual([
      ['a', false], ['b', true], ['c', false], ['d', true], ['e', true],
    ]);
    expect(request.outputs).toEqual([{ name: 'y', parameters: { binary_data: true } }, { name: 'z' }]);
    expect(request.parameters).toEqual({ binary_data_output: false, custom: 3 });
    for (const [name, t] of Object.entries(inputs)) expect(sameTensor(tensors[name], t), name).toBe(true);
  });

  it('reads a hand-written Triton-style binary request', () => {
    const header = utf8.encode(JSON.stringify({
      inputs: [
        { name: 'x', shape: [2], datatype: 'FP32', parameters: { binary_data_size: 8 } },
        { name: 'j', shape: [1], datatype: 'INT32', data: [5] },
        { name: 's', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 7 } },
        { name: 'b', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } },
      ],
    }));
    const blob = Buffer.alloc(18);
    blob.writeFloatLE(1.5, 0);
    blob.writeFloatLE(-2, 4);
    blob.writeUInt32LE(3, 8);
    blob.write('hé', 12); // 3 bytes in UTF-8
    blob.set([0, 1, 2], 15); // any non-zero byte is true
    const body = Buffer.concat([header, blob]);
    const { tensors } = decodeInferRequest(body, parseHeaderLength(String(header.byteLength)));
    expect(Array.from(tensors.x.data as Float32Array)).toEqual([1.5, -2]);
    expect(Array.from(tensors.j.data as Int32Array)).toEqual([5]);
    expect(td.decode((tensors.s.data as Uint8Array[])[0])).toBe('hé');
    expect(Array.from(tensors.b.data as Uint8Array)).toEqual([0, 1, 1]);
  });
});

describe('wantsBinaryOutput and parseHeaderLength', () => {
  it('uses the output parameter first, then the request default', () => {
    const req = (p: InferRequestJson['parameters'], outputs?: InferRequestJson['outputs']): InferRequestJson => ({
      inputs: [], parameters: p, outputs,
    });
    expect(wantsBinaryOutput(req(undefined), 'y')).toBe(false);
    expect(wantsBinaryOutput(req({ binary_data_output: true }), 'y')).toBe(true);
    expect(wantsBinaryOutput(req(undefined, [{ name: 'y', parameters: { binary_data: true } }]), 'y')).toBe(true);
    expect(wantsBinaryOutput(req(undefined, [{ name: 'y', parameters: { binary_data: true } }]), 'z')).toBe(false);
    expect(wantsBinaryOutput(req({ binary_data_output: true }, [{ name: 'y', parameters: { binary_data: false } }]), 'y')).toBe(false);
    expect(wantsBinaryOutput(req({ binary_data_output: true }, [{ name: 'y' }]), 'y')).toBe(true);
  });

  it('parses the header value', () => {
    expect(parseHeaderLength(undefined)).toBeUndefined();
    expect(parseHeaderLength(null)).toBeUndefined();
    expect(parseHeaderLength(' 123 ')).toBe(123);
    expect(() => parseHeaderLength('12abc')).toThrow(/Inference-Header-Content-Length/);
    expect(() => parseHeaderLength('-1')).toThrow(/Inference-Header-Content-Length/);
  });
});
