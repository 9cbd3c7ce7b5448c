/**
 * Open Inference Protocol v2 request/response bodies, JSON tensors and the
 * binary tensor data extension. With an `Inference-Header-Content-Length: N`
 * HTTP header, the first N bytes of the body are the JSON header and the rest
 * are the blobs of the tensors carrying `parameters.binary_data_size`,
 * concatenated in the order those tensors are listed. Without it the whole
 * body is JSON. JSON element conventions are in json-data.ts.
 */
import { BadRequestError, EnsembleError, PayloadTooLargeError, clip } from '../errors.js';
import { elementCount, isDatatype, tensorProblem } from './datatypes.js';
import { blobToData, dataToBlob } from './binary-data.js';
import { dataToJsonText, jsonTensorData } from './json-data.js';
import { bigintsToNumbers, parseJsonExact } from './json-text.js';
import type { Fail } from './json-data.js';
import type {
  InferInputJson, InferOutputJson, InferParameters, InferRequestJson, InferRequestedOutputJson, InferResponseJson,
  TensorParameters,
} from './protocol.js';
import type { Tensor } from './types.js';

/** HTTP header announcing the JSON header's byte length in a binary body. */
export const INFERENCE_HEADER_CONTENT_LENGTH = 'Inference-Header-Content-Length';

/** An encoded body; headerLength is set only when binary blobs follow the JSON. */
export interface EncodedBody {
  body: Uint8Array;
  headerLength?: number;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

const badRequest: Fail = (message) => {
  throw new BadRequestError(message);
};
// A server that answers with a body we cannot read is a bad gateway from the client's side.
const badResponse: Fail = (message) => {
  throw new EnsembleError(message, 'bad_gateway');
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse the Inference-Header-Content-Length header value (absent -> undefined). */
export function parseHeaderLength(value: string | null | undefined): number | undefined {
  if (value === undefined || value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (!/^[0-9]{1,15}$/.test(v)) {
    throw new BadRequestError(`${INFERENCE_HEADER_CONTENT_LENGTH} must be a non-negative integer, got '${value}'`);
  }
  return Number(v);
}

function splitBody(body: Uint8Array, headerLength: number | undefined, what: string, fail: Fail) {
  if (headerLength === undefined) return { json: body, binary: undefined };
  if (!Number.isSafeInteger(headerLength) || headerLength < 0 || headerLength > body.byteLength) {
    fail(`${what}: ${INFERENCE_HEADER_CONTENT_LENGTH} ${headerLength} does not fit a body of ${body.byteLength} bytes`);
  }
  return { json: body.subarray(0, headerLength), binary: body.subarray(headerLength) };
}

/**
 * The body's JSON object. JSON.parse reads it unless it cannot (bare NaN /
 * Infinity tokens) or would round an INT64/UINT64 element (an integer at or
 * beyond 2^53); then the exact reader (json-text.ts) reads it again, keeping
 * those tensors' integers as bigint and making every other number what
 * JSON.parse would. FP32 and the other datatypes never pay for the second read.
 */
function parseJson(bytes: Uint8Array, what: string, fail: Fail, key: 'inputs' | 'outputs'): Record<string, unknown> {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch (e) {
    return fail(`${what}: malformed JSON: ${(e as Error).message}`);
  }
  let value: unknown;
  let error: Error | undefined;
  try {
    value = JSON.parse(text);
  } catch (e) {
    error = e as Error;
  }
  // A body JSON.parse refused is read again only if a bare NaN or Infinity could be why: on the event loop,
  // the exact reader takes several times JSON.parse's time, and malformed JSON must not cost that twice.
  const nonFinite = error !== undefined && (text.includes('NaN') || text.includes('Infinity'));
  if (error !== undefined && !nonFinite) return fail(`${what}: malformed JSON: ${error.message}`);
  if (nonFinite || (isObject(value) && roundsIntegers(value[key]))) {
    try {
      value = parseJsonExact(text);
    } catch {
      // JSON.parse's words, when it failed: they are the ones users know.
      return fail(`${what}: malformed JSON: ${(error ?? new Error('unreadable')).message}`);
    }
    if (isObject(value)) keepBigintsInData(value, key);
  }
  if (!isObject(value)) return fail(`${what}: body must be a JSON object`);
  return value;
}

/** Whether some INT64/UINT64 tensor's JSON data has an integer a double cannot hold exactly. */
function roundsIntegers(list: unknown): boolean {
  if (!Array.isArray(list)) return false;
  const unsafe = (v: unknown): boolean => (Array.isArray(v) ? v.some(unsafe) : typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v));
  return list.some((t) => isObject(t) && (t.datatype === 'INT64' || t.datatype === 'UINT64') && unsafe(t.data));
}

/** bigint only in tensors' `data` (jsonToData reads it per datatype); numbers everywhere else, as JSON.parse makes them. */
function keepBigintsInData(root: Record<string, unknown>, key: 'inputs' | 'outputs'): void {
  for (const k of Object.keys(root)) {
    if (k !== key) { root[k] = bigintsToNumbers(root[k]); continue; }
    const list = root[k];
    if (!Array.isArray(list)) { root[k] = bigintsToNumbers(list); continue; }
    for (const t of list) {
      if (!isObject(t)) continue;
      for (const f of Object.keys(t)) if (f !== 'data') t[f] = bigintsToNumbers(t[f]);
    }
  }
}

/**
 * The body as an Open Inference Protocol request object, if it is one: a JSON
 * object with an `inputs` array. For bodies labelled as raw bytes (an octet
 * stream, as tritonclient.http.aio labels every request): JSON, not an image.
 * Only a body whose first non-blank byte is `{` is tried, so images are never parsed.
 */
export function parseInferRequestJson(body: Uint8Array): Record<string, unknown> | undefined {
  let i = 0;
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) i = 3; // a UTF-8 byte order mark
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
  if (body[i] !== 0x7b) return undefined;
  try {
    const raw = parseJson(body.subarray(i), 'inference request', badRequest, 'inputs');
    return Array.isArray(raw.inputs) ? raw : undefined;
  } catch {
    return undefined;
  }
}

function checkParameters(v: unknown, where: string, fail: Fail): InferParameters | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) return fail(`${where}: parameters must be a JSON object`);
  return v;
}

/**
 * A request's own parameters, read as Triton's HTTP server reads them: a
 * value is a string, number or boolean (the protocol's $parameter), keys
 * starting with `triton_` are reserved, and the parameters Triton gives a
 * meaning have its types. `priority` and the sequence parameters are taken
 * and not acted on, as Triton does for a model with one priority level and
 * no sequence batcher: every model here is such a model.
 */
function checkRequestParameters(parameters: InferParameters, what: string, fail: Fail): void {
  for (const [key, value] of Object.entries(parameters)) {
    const name = clip(key);
    if (key.startsWith('triton_')) fail(`${what}: parameter keys starting with 'triton_' are reserved ('${name}')`);
    if (value === null || !['string', 'number', 'boolean'].includes(typeof value)) {
      fail(`${what}: parameter '${name}' must be a string, a number or a boolean, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
    }
    const nonNegativeInteger = typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
    if ((key === 'binary_data_output' || key === 'sequence_start' || key === 'sequence_end') && typeof value !== 'boolean') {
      fail(`${what}: parameter ${key} must be a boolean`);
    }
    if (key === 'priority' && !nonNegativeInteger) fail(`${what}: parameter priority must be a non-negative integer, got ${JSON.stringify(value)}`);
    if (key === 'sequence_id' && !nonNegativeInteger && typeof value !== 'string') {
      fail(`${what}: parameter sequence_id must be a non-negative integer or a string`);
    }
  }
}

interface DecodedTensors {
  entries: (InferInputJson | InferOutputJson)[];
  tensors: Record<string, Tensor>;
}

/**
 * Validate and decode the tensors of a request (`inputs`) or a response
 * (`outputs`). Every message names the tensor. Binary sizes are checked
 * against the body before anything large is allocated.
 */
function decodeTensors(
  list: unknown[], binary: Uint8Array | undefined, kind: 'input' | 'output', headerLength: number | undefined, fail: Fail,
  maxItems = Infinity,
): DecodedTensors {
  const seen = new Set<string>();
  const entries: (InferInputJson | InferOutputJson)[] = [];
  const binarySizes: number[] = [];
  list.forEach((raw, i) => {
    if (!isObject(raw)) fail(`${kind} #${i}: must be a JSON object`);
    const r = raw as Record<string, unknown>;
    if (typeof r.name !== 'string' || r.name === '') fail(`${kind} #${i}: name must be a non-empty string`);
    const name = r.name as string;
    const where = `${kind} '${clip(name)}'`;
    if (seen.has(name)) fail(`${where}: duplicate ${kind} name`);
    seen.add(name);
    if (typeof r.datatype !== 'string' || !isDatatype(r.datatype)) {
      // BF16 is the protocol's, not a type any served tensor has (ONNX Runtime for Node has no bfloat16 tensors).
      fail(r.datatype === 'BF16'
        ? `${where}: datatype BF16 is not supported by this server (use FP32 or FP16)`
        : `${where}: unknown datatype ${JSON.stringify(r.datatype) ?? 'undefined'}`);
    }
    if (!Array.isArray(r.shape)) fail(`${where}: shape must be an array of non-negative integers`);
    for (const d of r.shape as unknown[]) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        fail(`${where}: shape ${JSON.stringify(r.shape)} has an invalid dim ${JSON.stringify(d)} (need a non-negative integer)`);
      }
    }
    const dims = r.shape as number[];
    // Before any element is converted: a request too big to serve costs no more than its parse.
    if (dims.length > 0 && dims[0] > maxItems) throw tooManyItems(name, dims[0], maxItems);
    const parameters = checkParameters(r.parameters, where, fail) as TensorParameters | undefined;
    refuseSharedMemory(parameters, where, fail);
    const size = parameters?.binary_data_size;
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
        fail(`${where}: binary_data_size must be a non-negative integer, got ${JSON.stringify(size)}`);
      }
      if (r.data !== undefined) fail(`${where}: has both data and binary_data_size`);
      if (binary === undefined) {
        fail(`${where}: binary_data_size is set but there is no ${INFERENCE_HEADER_CONTENT_LENGTH} header`);
      }
      binarySizes.push(size);
    } else if (r.data === undefined) {
      fail(`${where}: has neither data nor binary_data_size`);
    }
    const entry: InferInputJson = { name, shape: (r.shape as number[]).slice(), datatype: r.datatype as Tensor['datatype'] };
    if (parameters !== undefined) entry.parameters = parameters;
    entries.push(entry);
  });

  if (binary !== undefined) {
    const total = binarySizes.reduce((a, b) => a + b, 0);
    if (total !== binary.byteLength) {
      const named = entries
        .filter((e) => e.parameters?.binary_data_size !== undefined)
        .map((e) => `'${clip(e.name)}' (${e.parameters!.binary_data_size} bytes)`);
      const who = named.length ? `binary ${kind}s ${named.join(', ')} add up to ${total} bytes` : `no ${kind} has binary_data_size`;
      fail(`${who}, but the body has ${binary.byteLength} bytes after the ${headerLength}-byte JSON header`);
    }
  }

  const tensors: Record<string, Tensor> = {};
  let offset = 0;
  list.forEach((raw, i) => {
    const e = entries[i];
    const where = `${kind} '${clip(e.name)}'`;
    const scoped: Fail = (m) => fail(`${where}: ${m}`);
    const size = e.parameters?.binary_data_size;
    const count = elementCount(e.shape);
    const data = size === undefined
      ? jsonTensorData(e.datatype, e.shape, (raw as Record<string, unknown>).data, scoped)
      : blobToData(e.datatype, binary!.subarray(offset, offset + size), count, scoped);
    if (size !== undefined) offset += size;
    tensors[e.name] = { datatype: e.datatype, shape: e.shape.slice(), data };
  });
  return { entries, tensors };
}

/**
 * Triton's shared-memory extensions name a region instead of sending data; this
 * server has no shared memory with its clients, so such a tensor cannot be read.
 */
function refuseSharedMemory(parameters: InferParameters | undefined, where: string, fail: Fail): void {
  if (parameters?.shared_memory_region === undefined) return;
  fail(`${where}: this server does not offer the system_shared_memory or cuda_shared_memory extension `
    + '(shared_memory_region is set); send the data in the request, as JSON or binary tensor data');
}

/** 413 for an input with more rows than the pipeline's max_items. */
export function tooManyItems(input: string, rows: number, maxItems: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`input '${input}' has ${rows} items (dim 0), over the pipeline's max_items ${maxItems}`);
}

/**
 * Decode an inference request. `headerLength` is the Inference-Header-Content-Length
 * value (see parseHeaderLength). The returned request carries no `data`: the
 * values are in `tensors`, keyed by input name. Throws BadRequestError naming the
 * input, PayloadTooLargeError for an input with more than `maxItems` rows.
 */
export function decodeInferRequest(
  body: Uint8Array, headerLength?: number, opts: { maxItems?: number; parsed?: Record<string, unknown> } = {},
): { request: InferRequestJson; tensors: Record<string, Tensor> } {
  const fail = badRequest;
  const what = 'inference request';
  const { json, binary } = splitBody(body, headerLength, what, fail);
  // parsed: what parseInferRequestJson already read of a JSON-only body.
  const raw = opts.parsed ?? parseJson(json, what, fail, 'inputs');
  const request: InferRequestJson = { inputs: [] };
  if (raw.id !== undefined) {
    if (typeof raw.id !== 'string') fail(`${what}: id must be a string`);
    request.id = raw.id as string;
  }
  const parameters = checkParameters(raw.parameters, what, fail);
  if (parameters !== undefined) {
    checkRequestParameters(parameters, what, fail);
    request.parameters = parameters;
  }
  if (raw.outputs !== undefined) {
    if (!Array.isArray(raw.outputs)) fail(`${what}: outputs must be an array`);
    const seen = new Set<string>();
    request.outputs = (raw.outputs as unknown[]).map((o, i) => {
      if (!isObject(o) || typeof o.name !== 'string' || o.name === '') {
        return fail(`requested output #${i}: must be an object with a non-empty name`);
      }
      const where = `requested output '${clip(o.name)}'`;
      if (seen.has(o.name)) fail(`${where}: duplicate output name`);
      seen.add(o.name);
      const out: InferRequestedOutputJson = { name: o.name };
      const p = checkParameters(o.parameters, where, fail);
      refuseSharedMemory(p, where, fail);
      if (p !== undefined) {
        if (p.binary_data !== undefined && typeof p.binary_data !== 'boolean') fail(`${where}: binary_data must be a boolean`);
        out.parameters = p;
      }
      return out;
    });
  }
  if (!Array.isArray(raw.inputs)) fail(`${what}: missing 'inputs' array`);
  const { entries, tensors } = decodeTensors(raw.inputs as unknown[], binary, 'input', headerLength, fail, opts.maxItems);
  request.inputs = entries as InferInputJson[];
  return { request, tensors };
}

/**
 * Whether an output should go back in binary form: the requested output's own
 * `binary_data` when it sets one (true or false), else the request-level
 * `binary_data_output` (default false). This is Triton's precedence.
 */
export function wantsBinaryOutput(request: InferRequestJson, outputName: string): boolean {
  const own = request.outputs?.find((o) => o.name === outputName)?.parameters?.binary_data;
  if (typeof own === 'boolean') return own;
  return request.parameters?.binary_data_output === true;
}

/** One tensor to put on the wire, as JSON data or as a binary blob. */
export interface TensorToEncode {
  name: string;
  tensor: Tensor;
  binary: boolean;
}

/** JSON header + blobs for a list of tensors; shared by request and response encoding. */
function encodeBody(
  header: Record<string, unknown>, key: 'inputs' | 'outputs', items: TensorToEncode[], kind: string,
  error: (m: string) => Error,
): EncodedBody {
  const seen = new Set<string>();
  const blobs: Uint8Array[] = [];
  // Each entry written by hand around its data's text: INT64 data needs digits JSON.stringify cannot write.
  const entries = items.map(({ name, tensor, binary }) => {
    const where = `${kind} '${clip(name)}'`;
    if (seen.has(name)) throw error(`${where}: duplicate ${kind} name`);
    seen.add(name);
    const problem = tensorProblem(tensor);
    if (problem !== undefined) throw error(`${where}: ${problem}`);
    const entry: Record<string, unknown> = { name, datatype: tensor.datatype, shape: tensor.shape };
    if (binary) {
      const blob = dataToBlob(tensor.datatype, tensor.data);
      blobs.push(blob);
      entry.parameters = { binary_data_size: blob.byteLength };
      return JSON.stringify(entry);
    }
    const head = JSON.stringify(entry);
    return `${head.slice(0, -1)},"data":${dataToJsonText(tensor.datatype, tensor.data, where)}}`;
  });
  const rest = JSON.stringify(header);
  const list = `${JSON.stringify(key)}:[${entries.join(',')}]`;
  const json = utf8.encode(rest === '{}' ? `{${list}}` : `${rest.slice(0, -1)},${list}}`);
  if (blobs.length === 0) return { body: json };
  let total = json.byteLength;
  for (const b of blobs) total += b.byteLength;
  const body = new Uint8Array(total);
  body.set(json, 0);
  let off = json.byteLength;
  for (const b of blobs) {
    body.set(b, off);
    off += b.byteLength;
  }
  return { body, headerLength: json.byteLength };
}

/**
 * Encode an inference response. Outputs with `binary: true` go after the JSON
 * header; the rest are flat JSON data. A BYTES output that is not valid UTF-8
 * cannot be JSON (EnsembleError): check jsonEncodable() and send it binary.
 */
export function encodeInferResponse(
  meta: { model_name: string; model_version?: string; id?: string; parameters?: Record<string, unknown> },
  outputs: TensorToEncode[],
): EncodedBody {
  const header: Record<string, unknown> = { model_name: meta.model_name };
  if (meta.model_version !== undefined) header.model_version = meta.model_version;
  if (meta.id !== undefined) header.id = meta.id;
  if (meta.parameters !== undefined) header.parameters = meta.parameters;
  return encodeBody(header, 'outputs', outputs, 'output', (m) => new EnsembleError(m));
}

export interface EncodeRequestOptions {
  id?: string;
  /** true: every input binary; a list: those inputs binary, the rest JSON. */
  binary?: boolean | string[];
  /** Outputs to ask for; `binary` sets each one's binary_data parameter. */
  outputs?: { name: string; binary?: boolean }[];
  parameters?: Record<string, unknown>;
}

/** Encode an inference request (client side: CLI, tests, benchmarks). */
export function encodeInferRequest(inputs: Record<string, Tensor>, opts: EncodeRequestOptions = {}): EncodedBody {
  const header: Record<string, unknown> = {};
  if (opts.id !== undefined) header.id = opts.id;
  if (opts.parameters !== undefined) header.parameters = opts.parameters;
  const binary = opts.binary ?? false;
  const items = Object.entries(inputs).map(([name, tensor]) => ({
    name, tensor, binary: Array.isArray(binary) ? binary.includes(name) : binary,
  }));
  if (opts.outputs !== undefined) {
    header.outputs = opts.outputs.map((o) => (o.binary === undefined
      ? { name: o.name }
      : { name: o.name, parameters: { binary_data: o.binary } }));
  }
  return encodeBody(header, 'inputs', items, 'input', (m) => new BadRequestError(m));
}

/**
 * Decode an inference response (client side). The returned response carries
 * no `data`: values are in `tensors`, keyed by output name. A body that is not
 * a valid response throws EnsembleError with status 502.
 */
export function decodeInferResponse(
  body: Uint8Array, headerLength?: number,
): { response: InferResponseJson; tensors: Record<string, Tensor> } {
  const fail = badResponse;
  const what = 'inference response';
  const { json, binary } = splitBody(body, headerLength, what, fail);
  const raw = parseJson(json, what, fail, 'outputs');
  if (typeof raw.model_name !== 'string') fail(`${what}: model_name must be a string`);
  const response: InferResponseJson = { model_name: raw.model_name as string, outputs: [] };
  if (raw.model_version !== undefined) {
    if (typeof raw.model_version !== 'string') fail(`${what}: model_version must be a string`);
    response.model_version = raw.model_version as string;
  }
  if (raw.id !== undefined) {
    if (typeof raw.id !== 'string') fail(`${what}: id must be a string`);
    response.id = raw.id as string;
  }
  const parameters = checkParameters(raw.parameters, what, fail);
  if (parameters !== undefined) response.parameters = parameters;
  if (!Array.isArray(raw.outputs)) fail(`${what}: missing 'outputs' array`);
  const { entries, tensors } = decodeTensors(raw.outputs as unknown[], binary, 'output', headerLength, fail);
  response.outputs = entries as InferOutputJson[];
  return { response, tensors };
}
