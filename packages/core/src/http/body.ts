import { BadRequestError, EnsembleError, PayloadTooLargeError } from '../errors.js';
import { decodeBody, requestEncodings } from './content-encoding.js';

/**
 * Read a request body, refusing with 413 as soon as it passes `limit` bytes —
 * before buffering it all, so a huge chunked upload cannot exhaust memory —
 * and undo its Content-Encoding (gzip, deflate), the decoded body held to
 * `limit` bytes as well; another encoding is a 415.
 * `fromNodeServer`: `req` is @hono/node-server's request over Node's HTTP parser.
 * `header`: the request's headers, read some cheaper way than `req.headers`.
 */
export async function readBody(req: Request, limit: number, opts: BodyOptions = {}): Promise<Uint8Array> {
  const header = opts.header ?? ((name: string) => req.headers.get(name) ?? undefined);
  // Before reading: a body we could not decode is not worth receiving.
  const encodings = requestEncodings(header('content-encoding'));
  const raw = await readRaw(req, limit, opts.fromNodeServer === true, header('content-length'));
  return encodings.length ? decodeBody(raw, encodings, limit) : raw;
}

export interface BodyOptions {
  fromNodeServer?: boolean;
  header?: (name: string) => string | undefined;
}

async function readRaw(req: Request, limit: number, fromNodeServer: boolean, contentLength: string | undefined): Promise<Uint8Array> {
  const declared = Number(contentLength ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    throw new PayloadTooLargeError(`request body of ${declared} bytes is over the ${limit} byte limit`);
  }
  // @hono/node-server reads a body straight off the socket (no web stream, no undici Request) when
  // asked for all of it. Node's HTTP parser stops a body at its declared content-length, so with
  // one declared (and checked above) the read is bounded; without one, stream with the running limit.
  if (fromNodeServer && Number.isFinite(declared)) {
    let buf: ArrayBuffer;
    try {
      buf = await req.arrayBuffer();
    } catch {
      throw unreadable(req);
    }
    return new Uint8Array(buf);
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let r: Awaited<ReturnType<typeof reader.read>>;
    try {
      r = await reader.read();
    } catch {
      throw unreadable(req);
    }
    if (r.done) break;
    size += r.value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new PayloadTooLargeError(`request body is over the ${limit} byte limit`);
    }
    chunks.push(r.value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) { out.set(c, off); off += c.byteLength; }
  return out;
}


/** A body that stopped coming: the client hung up (499, as any other request it leaves), or it was not a body at all. */
function unreadable(req: Request): EnsembleError {
  return req.signal.aborted
    ? new EnsembleError('the client went away before its request body was read', 'cancelled')
    : new BadRequestError('request body could not be read');
}
