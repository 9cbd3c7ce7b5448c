/**
 * The stage call on the wire between the gateway and a stage Lambda. Lambda
 * payloads are JSON, so each tensor travels as its binary-data-extension
 * bytes (little-endian, BYTES length-prefixed) in base64: exact for every
 * datatype (INT64, FP16 bits, NaN, arbitrary bytes) where JSON numbers are not.
 */
import { BadRequestError, PayloadTooLargeError, StageError, errorCode, toEnsembleError } from '../errors.js';
import { blobToData, dataToBlob } from '../tensor/binary-data.js';
import { elementCount, isDatatype, tensorProblem } from '../tensor/datatypes.js';
import type { Datatype, Item, Tensor } from '../tensor/types.js';
import type { BatchResult, ColocatedRun, ItemOutcome } from '../runtime/types.js';
import { readCarrier, type TraceCarrier } from '../observability/trace-context.js';

export const PAYLOAD_VERSION = 1;
/** Synchronous Invoke caps both the request and the response at 6 MB. */
export const LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024;
/**
 * Payloads above this go through the bucket by reference. Some headroom
 * below the limit, so a payload right at it never fails on a byte-count
 * difference between our JSON and what the runtime sends.
 */
export const SPILL_ABOVE_BYTES = LAMBDA_PAYLOAD_LIMIT - 64 * 1024;

export interface WireTensor {
  datatype: Datatype;
  shape: number[];
  /** Base64 of the tensor's bytes in the binary data extension's layout. */
  data: string;
}
export type WireItem = Record<string, WireTensor>;

export interface StageRequestPayload {
  v: typeof PAYLOAD_VERSION;
  pipeline: string;
  stage: string;
  items: WireItem[];
  /** The batch span's W3C trace context, for the stage's own span; absent when the batch is not traced. */
  trace?: TraceCarrier;
}

export type WireOutcome =
  | { ok: true; items: WireItem[] }
  | { ok: false; error: string; code?: string };

/**
 * What the stage function measured besides compute; optional both ways, so a
 * gateway and a stage function of different builds still understand each other.
 */
export type WireProfile = Pick<BatchResult, 'coldStartSplit' | 'cpuMs' | 'peakRssBytes' | 'servedMs' | 'transfer' | 'lambda' | 'colocated'>;

const PROFILE_KEYS = ['coldStartSplit', 'cpuMs', 'peakRssBytes', 'servedMs', 'transfer', 'lambda', 'colocated'] as const;

/** A batch result, or a whole-batch failure the stage reports instead of crashing the invocation. */
export type StageResponsePayload =
  | { v: typeof PAYLOAD_VERSION; ok: true; outcomes: WireOutcome[]; computeMs: number; coldStart: boolean; initMs?: number; profile?: WireProfile }
  | { v: typeof PAYLOAD_VERSION; ok: false; error: string; code: string };

/** A payload parked in the bucket (see lambda-spill.ts): request or response, read by key. */
export interface SpillRef {
  v: typeof PAYLOAD_VERSION;
  spill: { key: string; bytes: number };
}

export function isSpillRef(p: unknown): p is SpillRef {
  if (typeof p !== 'object' || p === null || (p as { v?: unknown }).v !== PAYLOAD_VERSION) return false;
  const s = (p as { spill?: unknown }).spill as { key?: unknown; bytes?: unknown } | undefined;
  return typeof s === 'object' && s !== null && typeof s.key === 'string' && typeof s.bytes === 'number';
}

export interface StageRequest {
  pipeline: string;
  stage: string;
  items: Item[];
  trace?: TraceCarrier;
}

export function encodeStageRequest(pipeline: string, stage: string, items: Item[], trace?: TraceCarrier): StageRequestPayload {
  const payload: StageRequestPayload = { v: PAYLOAD_VERSION, pipeline, stage, items: items.map(encodeItem) };
  if (trace) payload.trace = trace;
  return payload;
}

/** The request a stage function received; malformed payloads are 400s. */
export function decodeStageRequest(payload: unknown): StageRequest {
  const fail = (msg: string): never => { throw new BadRequestError(`stage payload: ${msg}`); };
  const p = asRecord(payload, 'the payload', fail);
  checkVersion(p.v, fail);
  if (typeof p.pipeline !== 'string' || typeof p.stage !== 'string') fail('pipeline and stage must be strings');
  if (!Array.isArray(p.items)) fail('items must be an array');
  const items = (p.items as unknown[]).map((it, i) => decodeItem(it, `items[${i}]`, fail));
  const req: StageRequest = { pipeline: p.pipeline as string, stage: p.stage as string, items };
  // A trace context that does not parse is dropped, as W3C asks of a malformed traceparent: the batch still runs.
  const trace = readCarrier(p.trace);
  if (trace) req.trace = trace;
  return req;
}

export function encodeStageResult(result: BatchResult): StageResponsePayload {
  const out: StageResponsePayload = {
    v: PAYLOAD_VERSION,
    ok: true,
    outcomes: result.outcomes.map((o): WireOutcome => (o.ok ? { ok: true, items: o.items.map(encodeItem) } : wireError(o))),
    computeMs: result.computeMs,
    coldStart: result.coldStart,
  };
  if (result.initMs !== undefined) out.initMs = result.initMs;
  const profile: WireProfile = {};
  for (const k of PROFILE_KEYS) if (result[k] !== undefined) (profile as Record<string, unknown>)[k] = result[k];
  if (Object.keys(profile).length) out.profile = profile;
  return out;
}

/** A whole-batch failure as a payload, so the caller gets the message and code, not a Lambda stack trace. */
export function encodeStageFailure(err: unknown): StageResponsePayload {
  const e = toEnsembleError(err);
  return { v: PAYLOAD_VERSION, ok: false, error: e.message, code: e.code };
}

/**
 * The stage's answer as a BatchResult. A whole-batch failure rejects with a
 * StageError carrying the stage's code; a malformed answer is a bad_gateway
 * StageError (the stage misbehaved, not the caller).
 */
export function decodeStageResponse(payload: unknown, stage: string): BatchResult {
  const fail = (msg: string): never => { throw new StageError(stage, `malformed response: ${msg}`, 'bad_gateway'); };
  const p = asRecord(payload, 'the response', fail);
  checkVersion(p.v, fail);
  if (p.ok === false) {
    // The function ran and says the batch failed: a stage_failed is its run throwing (a crash is a FunctionError).
    const code = errorCode(p.code);
    throw new StageError(stage, typeof p.error === 'string' ? p.error : 'failed without a message', code, { byRun: code === 'stage_failed' });
  }
  if (p.ok !== true) fail('ok must be true or false');
  if (!Array.isArray(p.outcomes)) fail('outcomes must be an array');
  if (typeof p.computeMs !== 'number' || typeof p.coldStart !== 'boolean') fail('computeMs and coldStart are required');
  const outcomes = (p.outcomes as unknown[]).map((o, i): ItemOutcome => {
    const r = asRecord(o, `outcomes[${i}]`, fail);
    if (r.ok === true) {
      if (!Array.isArray(r.items)) fail(`outcomes[${i}].items must be an array`);
      return { ok: true, items: (r.items as unknown[]).map((it, j) => decodeItem(it, `outcomes[${i}].items[${j}]`, fail)) };
    }
    if (r.ok !== false || typeof r.error !== 'string') fail(`outcomes[${i}] must be { ok: true, items } or { ok: false, error }`);
    const e: ItemOutcome = { ok: false, error: r.error as string };
    if (typeof r.code === 'string') e.code = r.code;
    return e;
  });
  const result: BatchResult = { outcomes, computeMs: p.computeMs as number, coldStart: p.coldStart as boolean };
  if (typeof p.initMs === 'number') result.initMs = p.initMs;
  // Measurements only: one that is not what this build expects is left out, never a failed batch.
  if (typeof p.profile === 'object' && p.profile !== null) {
    const w = p.profile as Record<string, unknown>;
    for (const k of ['cpuMs', 'peakRssBytes', 'servedMs'] as const) if (typeof w[k] === 'number') result[k] = w[k] as number;
    for (const k of ['coldStartSplit', 'transfer', 'lambda'] as const) {
      if (typeof w[k] === 'object' && w[k] !== null) (result as unknown as Record<string, unknown>)[k] = w[k];
    }
    const runs = Array.isArray(w.colocated) ? (w.colocated as unknown[]).filter(isColocatedRun) : [];
    if (runs.length) result.colocated = runs;
  }
  return result;
}

function isColocatedRun(x: unknown): x is ColocatedRun {
  const r = x as Record<string, unknown> | null;
  return typeof r === 'object' && r !== null && typeof r.stage === 'string'
    && (['items', 'failedItems', 'computeMs'] as const).every((k) => typeof r[k] === 'number');
}

/** JSON text of a payload, refused when it would not fit through Invoke (for callers with no bucket to spill to). */
export function payloadBytes(payload: StageRequestPayload | StageResponsePayload, what: string): Buffer {
  const bytes = Buffer.from(JSON.stringify(payload), 'utf8');
  if (bytes.byteLength > LAMBDA_PAYLOAD_LIMIT) {
    throw new PayloadTooLargeError(`${what} is ${(bytes.byteLength / 1048576).toFixed(1)} MB, over Lambda's 6 MB invoke limit; lower the stage's batch.max_size`);
  }
  return bytes;
}

/**
 * The UTF-8 length of JSON.stringify(payload), without making that text: the
 * tensors' base64 (the bulk of a payload, and never escaped in JSON) is
 * counted, not copied; the rest, which is small, is stringified. A stage
 * function checks its answer against Invoke's limit with it, and the runtime
 * then stringifies the answer once, to send it.
 */
export function jsonByteLength(payload: StageRequestPayload | StageResponsePayload): number {
  let base64 = 0;
  const skeleton = JSON.stringify(payload, function (this: unknown, key: string, value: unknown) {
    if (key === 'data' && typeof value === 'string' && isWireTensor(this)) {
      base64 += value.length;
      return '';
    }
    return value;
  });
  return Buffer.byteLength(skeleton, 'utf8') + base64;
}

/** A tensor as encodeItem writes it: its `data` is base64 by construction, so JSON needs no escapes in it. */
function isWireTensor(v: unknown): boolean {
  const w = v as Partial<WireTensor> | null;
  return typeof w === 'object' && w !== null && typeof w.datatype === 'string' && Array.isArray(w.shape);
}

function wireError(o: { error: string; code?: string }): WireOutcome {
  return o.code === undefined ? { ok: false, error: o.error } : { ok: false, error: o.error, code: o.code };
}

function encodeItem(item: Item): WireItem {
  const out: WireItem = {};
  for (const [name, t] of Object.entries(item)) {
    const blob = dataToBlob(t.datatype, t.data);
    out[name] = { datatype: t.datatype, shape: [...t.shape], data: Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).toString('base64') };
  }
  return out;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeItem(value: unknown, where: string, fail: (msg: string) => never): Item {
  const rec = asRecord(value, where, fail);
  const item: Item = {};
  for (const [name, raw] of Object.entries(rec)) {
    const w = asRecord(raw, `${where}.${name}`, fail);
    const at = `${where}.${name}`;
    if (typeof w.datatype !== 'string' || !isDatatype(w.datatype)) fail(`${at}: unknown datatype ${JSON.stringify(w.datatype)}`);
    if (!Array.isArray(w.shape) || !w.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      fail(`${at}: shape must be a list of non-negative integers`);
    }
    if (typeof w.data !== 'string' || w.data.length % 4 !== 0 || !BASE64.test(w.data)) fail(`${at}: data must be base64`);
    const dt = w.datatype as Datatype;
    const shape = w.shape as number[];
    const bytes = Buffer.from(w.data as string, 'base64');
    const blob = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const t: Tensor = { datatype: dt, shape, data: blobToData(dt, blob, elementCount(shape), (msg) => fail(`${at}: ${msg}`)) };
    const problem = tensorProblem(t);
    if (problem !== undefined) fail(`${at}: ${problem}`);
    item[name] = t;
  }
  return item;
}

function asRecord(v: unknown, what: string, fail: (msg: string) => never): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function checkVersion(v: unknown, fail: (msg: string) => never): void {
  if (v !== PAYLOAD_VERSION) fail(`version ${JSON.stringify(v)} is not ${PAYLOAD_VERSION}; deploy the gateway and stages together`);
}
