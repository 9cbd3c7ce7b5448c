/** Small fetch wrappers for tests that talk to a running gateway over real HTTP. */
import { INFERENCE_HEADER_CONTENT_LENGTH, decodeInferResponse, encodeInferRequest, type EncodeRequestOptions } from '../../packages/core/src/tensor/codec.js';
import type { Tensor } from '../../packages/core/src/tensor/types.js';
import type { InferResponseJson } from '../../packages/core/src/tensor/protocol.js';

export interface JsonReply<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export async function getJson<T = any>(url: string): Promise<JsonReply<T>> {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, body: (await res.json()) as T };
}

/** POST a body (an object is JSON-encoded; a string is sent as is). */
export async function postJson<T = any>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<JsonReply<T>> {
  const res = await fetch(url, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${url} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

export interface DecodedReply {
  status: number;
  headers: Headers;
  response: InferResponseJson;
  tensors: Record<string, Tensor>;
}

/** Encode with the client codec, POST, and decode the answer (JSON or binary) with it too. */
export async function inferTensors(
  base: string, model: string, inputs: Record<string, Tensor>, opts: EncodeRequestOptions = {},
): Promise<DecodedReply> {
  const encoded = encodeInferRequest(inputs, opts);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (encoded.headerLength !== undefined) {
    headers['content-type'] = 'application/octet-stream';
    headers[INFERENCE_HEADER_CONTENT_LENGTH] = String(encoded.headerLength);
  }
  const res = await fetch(`${base}/v2/models/${model}/infer`, { method: 'POST', body: encoded.body, headers });
  const body = new Uint8Array(await res.arrayBuffer());
  if (!res.ok) throw new Error(`${model} answered ${res.status}: ${new TextDecoder().decode(body)}`);
  const headerLength = res.headers.get(INFERENCE_HEADER_CONTENT_LENGTH);
  const { response, tensors } = decodeInferResponse(body, headerLength === null ? undefined : Number(headerLength));
  return { status: res.status, headers: res.headers, response, tensors };
}
