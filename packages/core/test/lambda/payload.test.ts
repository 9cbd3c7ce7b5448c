import { describe, expect, it } from 'vitest';
import {
  LAMBDA_PAYLOAD_LIMIT, decodeStageRequest, decodeStageResponse, encodeStageFailure, encodeStageRequest, encodeStageResult,
  jsonByteLength, payloadBytes,
} from '../../src/lambda/payload.js';
import { BadRequestError, PayloadTooLargeError, StageError, TimeoutError } from '../../src/errors.js';
import { DATATYPES, type Item, type Tensor } from '../../src/tensor/types.js';
import type { BatchResult } from '../../src/runtime/types.js';
import { SAMPLES, sameTensor, show } from '../tensor/samples.js';

/** Through JSON text, as Lambda carries it. */
const viaJson = <T>(v: T): unknown => JSON.parse(JSON.stringify(v));

function expectSameItem(got: Item, want: Item): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [k, t] of Object.entries(want)) expect(sameTensor(got[k], t), `${k}: ${show(got[k])} vs ${show(t)}`).toBe(true);
}

describe('stage request payload', () => {
  it('round-trips every datatype exactly through JSON (INT64 extremes, FP16 bits, NaN, arbitrary bytes)', () => {
    const items: Item[] = [Object.fromEntries(DATATYPES.map((dt) => [dt.toLowerCase(), SAMPLES[dt]]))];
    const back = decodeStageRequest(viaJson(encodeStageRequest('p', 's', items)));
    expect(back.pipeline).toBe('p');
    expect(back.stage).toBe('s');
    expect(back.items).toHaveLength(1);
    expectSameItem(back.items[0], items[0]);
  });

  it('keeps several items apart, including empty and scalar tensors', () => {
    const empty: Tensor = { datatype: 'FP32', shape: [0, 3], data: new Float32Array(0) };
    const scalar: Tensor = { datatype: 'INT64', shape: [], data: new BigInt64Array([-7n]) };
    const noBytes: Tensor = { datatype: 'BYTES', shape: [0], data: [] };
    const items: Item[] = [{ a: empty, b: scalar }, { a: SAMPLES.FP32, b: SAMPLES.INT64 }, { c: noBytes }];
    const back = decodeStageRequest(viaJson(encodeStageRequest('p', 's', items))).items;
    expect(back).toHaveLength(3);
    items.forEach((it, i) => expectSameItem(back[i], it));
  });

  it('encodes only the elements of a view into a larger buffer', () => {
    const whole = new Float32Array([9, 1.5, -2, 9]);
    const t: Tensor = { datatype: 'FP32', shape: [2], data: whole.subarray(1, 3) };
    const back = decodeStageRequest(viaJson(encodeStageRequest('p', 's', [{ t }]))).items[0].t;
    expect(Array.from(back.data as Float32Array)).toEqual([1.5, -2]);
  });

  it.each([
    ['not an object', 'hello', 'the payload must be an object'],
    ['wrong version', { v: 2, pipeline: 'p', stage: 's', items: [] }, 'version 2 is not 1'],
    ['items missing', { v: 1, pipeline: 'p', stage: 's' }, 'items must be an array'],
    ['bad datatype', { v: 1, pipeline: 'p', stage: 's', items: [{ x: { datatype: 'FP8', shape: [1], data: 'AA==' } }] }, 'items[0].x: unknown datatype "FP8"'],
    ['bad shape', { v: 1, pipeline: 'p', stage: 's', items: [{ x: { datatype: 'UINT8', shape: [-1], data: 'AA==' } }] }, 'shape must be a list of non-negative integers'],
    ['not base64', { v: 1, pipeline: 'p', stage: 's', items: [{ x: { datatype: 'UINT8', shape: [1], data: 'A?==' } }] }, 'data must be base64'],
    ['size mismatch', { v: 1, pipeline: 'p', stage: 's', items: [{ x: { datatype: 'FP32', shape: [2], data: 'AAAAAA==' } }] }, 'items[0].x: binary_data_size is 4 bytes but 2 FP32 elements need 8'],
  ])('refuses %s with a 400 that says where', (_what, payload, message) => {
    expect(() => decodeStageRequest(payload)).toThrow(BadRequestError);
    expect(() => decodeStageRequest(payload)).toThrow(message);
  });
});

describe('stage response payload', () => {
  it('round-trips outcomes, per-item errors and timings', () => {
    const result: BatchResult = {
      outcomes: [
        { ok: true, items: [{ y: SAMPLES.FP16 }] },
        { ok: false, error: 'bad row', code: 'invalid_input' },
        { ok: true, items: [] },
        { ok: true, items: [{ y: SAMPLES.BYTES }, { y: SAMPLES.BOOL }] },
        { ok: false, error: 'no code' },
      ],
      computeMs: 12.5,
      coldStart: true,
      initMs: 830.25,
    };
    const back = decodeStageResponse(viaJson(encodeStageResult(result)), 's');
    expect(back.computeMs).toBe(12.5);
    expect(back.coldStart).toBe(true);
    expect(back.initMs).toBe(830.25);
    expect(back.outcomes.map((o) => (o.ok ? o.items.length : [o.error, o.code]))).toEqual([1, ['bad row', 'invalid_input'], 0, 2, ['no code', undefined]]);
    const o0 = back.outcomes[0];
    const o3 = back.outcomes[3];
    if (!o0.ok || !o3.ok) throw new Error('unreachable');
    expectSameItem(o0.items[0], { y: SAMPLES.FP16 });
    expectSameItem(o3.items[0], { y: SAMPLES.BYTES });
    expectSameItem(o3.items[1], { y: SAMPLES.BOOL });
    expect('initMs' in encodeStageResult({ ...result, initMs: undefined })).toBe(false);
  });

  it('carries what each co-located stage did, and drops an entry this build does not understand', () => {
    const result: BatchResult = {
      outcomes: [{ ok: true, items: [] }], computeMs: 3, coldStart: false,
      colocated: [{ stage: 'detect-pre', items: 2, failedItems: 1, computeMs: 1.5 }],
    };
    expect(decodeStageResponse(viaJson(encodeStageResult(result)), 's').colocated).toEqual(result.colocated);
    const wire = viaJson(encodeStageResult(result)) as { profile: { colocated: unknown[] } };
    wire.profile.colocated.push({ stage: 'detect-post', items: 'two' }, null);
    expect(decodeStageResponse(wire, 's').colocated).toEqual(result.colocated);
  });

  it('turns a whole-batch failure into a StageError with the stage\'s code', () => {
    const failure = viaJson(encodeStageFailure(new TimeoutError('too slow')));
    let err: unknown;
    try { decodeStageResponse(failure, 'detect'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(StageError);
    expect((err as StageError).code).toBe('timeout');
    expect((err as StageError).message).toBe("stage 'detect' failed: too slow");
    expect(viaJson(encodeStageFailure('plain'))).toEqual({ v: 1, ok: false, error: 'plain', code: 'internal' });
  });

  it('calls a malformed answer the stage\'s fault (502)', () => {
    for (const bad of [null, { v: 1, ok: true }, { v: 1, ok: true, outcomes: [{ ok: 'yes' }], computeMs: 1, coldStart: false }]) {
      let err: unknown;
      try { decodeStageResponse(bad, 'x'); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(StageError);
      expect((err as StageError).code).toBe('bad_gateway');
    }
  });
});

describe('payload size', () => {
  it("refuses a payload over Lambda's 6 MB with 413", () => {
    const big: Tensor = { datatype: 'UINT8', shape: [5 * 1024 * 1024], data: new Uint8Array(5 * 1024 * 1024) };
    const small = payloadBytes(encodeStageRequest('p', 's', [{ x: SAMPLES.UINT8 }]), 'small');
    expect(small.byteLength).toBeLessThan(LAMBDA_PAYLOAD_LIMIT);
    // 5 MiB of bytes is ~6.7 MiB of base64.
    expect(() => payloadBytes(encodeStageRequest('p', 's', [{ x: big }]), "stage 's': a batch of 1 items")).toThrow(PayloadTooLargeError);
    expect(() => payloadBytes(encodeStageRequest('p', 's', [{ x: big }]), "stage 's': a batch of 1 items")).toThrow(/6\.7 MB, over Lambda's 6 MB/);
  });
});

describe('jsonByteLength', () => {
  it('is the UTF-8 length of the JSON text, for every datatype, escapes and non-ASCII text, a tensor named data', () => {
    const result: BatchResult = {
      outcomes: [
        ...DATATYPES.map((dt) => ({ ok: true as const, items: [{ y: SAMPLES[dt] }, { data: SAMPLES[dt] }] as Item[] })),
        { ok: false, error: 'line "1"\n\tbad \u0001 — très mauvais 文字 🚫', code: 'invalid_input' },
      ],
      computeMs: 1.25, coldStart: false, initMs: 3,
    };
    const answer = encodeStageResult(result);
    expect(jsonByteLength(answer)).toBe(Buffer.byteLength(JSON.stringify(answer), 'utf8'));
    const request = encodeStageRequest('pipé', 'stâge', [{ x: SAMPLES.BYTES, data: SAMPLES.FP32 }], { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    expect(jsonByteLength(request)).toBe(Buffer.byteLength(JSON.stringify(request), 'utf8'));
  });

  it('is exact for answers of about 6 MB, the size the stage function decides to spill at', () => {
    // Base64 of n bytes is 4·ceil(n/3) characters: n one byte at a time, with and without base64 padding.
    for (const n of [4_667_000, 4_667_001, 4_667_002, 4_667_003]) {
      const t: Tensor = { datatype: 'UINT8', shape: [n], data: new Uint8Array(n).fill(7) };
      const answer = encodeStageResult({ outcomes: [{ ok: true, items: [{ y: t }] }], computeMs: 1, coldStart: false });
      expect(jsonByteLength(answer)).toBe(Buffer.byteLength(JSON.stringify(answer), 'utf8'));
    }
  });
});
