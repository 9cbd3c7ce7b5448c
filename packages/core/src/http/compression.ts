import type { MiddlewareHandler } from 'hono';
import { encodeBody, responseEncoding } from './content-encoding.js';

/**
 * Below this many bytes an answer goes out as it is: gzip's own header and
 * the CPU cost more than the bytes saved, and it fits one packet either way.
 */
export const COMPRESS_MIN_BYTES = 1024;

// What we answer with: JSON, and the binary tensor data extension's JSON + blobs.
const COMPRESSIBLE = /^application\/(json|octet-stream)\b/i;

/**
 * Compress answers for a client that sends Accept-Encoding (gzip or deflate),
 * as Triton's server does: the whole body, JSON header and binary blobs
 * together, so `Inference-Header-Content-Length` still counts the JSON header's
 * bytes in the decoded body (tritonclient decompresses, then splits there).
 */
export function compression(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const res = c.res;
    if (settled.has(res)) return;
    const enc = responseEncoding(c.req.header('accept-encoding'));
    const type = res.headers.get('content-type') ?? '';
    if (res.headers.has('content-encoding') || c.req.method === 'HEAD' || !COMPRESSIBLE.test(type) || !hasBody(res)) return;
    // Whether or not this one is compressed, the answer depends on the header: caches must know.
    res.headers.append('vary', 'Accept-Encoding');
    if (!enc) return;
    // Every answer here is already whole in memory (JSON, or an encoded infer body); reading it back is a copy.
    const body = new Uint8Array(await res.arrayBuffer());
    const headers = new Headers(res.headers);
    let out: Uint8Array<ArrayBuffer> = body;
    if (body.byteLength >= COMPRESS_MIN_BYTES) {
      out = new Uint8Array(await encodeBody(body, enc));
      headers.set('content-encoding', enc);
    }
    headers.set('content-length', String(out.byteLength));
    c.res = new Response(out, { status: res.status, statusText: res.statusText, headers });
  };
}

/** Answers made by encodedResponse: the rule above is applied already. */
const settled = new WeakSet<Response>();

/**
 * An answer whose bytes are whole in memory, with the rule of compression()
 * applied as it is made (`Vary`, and the body encoded when asked for and
 * large enough), its headers a plain object: reading a response's headers
 * back (as the middleware must) makes @hono/node-server build a Headers
 * object per request, and then turn it back into Node's headers to send.
 * `acceptEncoding` is the request's Accept-Encoding header.
 */
export async function encodedResponse(
  body: Uint8Array<ArrayBuffer>, status: number, headers: Record<string, string>, acceptEncoding: string | undefined,
): Promise<Response> {
  headers.vary = 'Accept-Encoding';
  const enc = body.byteLength >= COMPRESS_MIN_BYTES ? responseEncoding(acceptEncoding) : undefined;
  let out = body;
  if (enc) {
    out = new Uint8Array(await encodeBody(body, enc));
    headers['content-encoding'] = enc;
  }
  headers['content-length'] = String(out.byteLength);
  const res = new Response(out, { status, headers });
  settled.add(res);
  return res;
}

/**
 * Whether an answer has a body, without reading `res.body`: on
 * @hono/node-server that getter turns its lightweight Response (sent
 * straight from the bytes it holds) into a full one, streamed out chunk by
 * chunk, which costs more than the rest of a small answer. Our answers with
 * no body are the statuses that forbid one and `c.body(null)`, which sets no
 * content-type and so never gets here.
 */
function hasBody(res: Response): boolean {
  if (res.status === 204 || res.status === 304) return false;
  return res.headers.get('content-length') !== '0';
}
