/**
 * Request bodies sent with `Content-Encoding` (tritonclient's
 * `request_compression_algorithm`, curl's `--data-binary @x.gz`), and the
 * response encoding a client's `Accept-Encoding` picks.
 */
import { promisify } from 'node:util';
import { deflate, gunzip, gzip, inflate, type InputType, type ZlibOptions } from 'node:zlib';
import { PayloadTooLargeError, BadRequestError, UnsupportedEncodingError, clip } from '../errors.js';

/** What we decode and encode, in the order we prefer them. HTTP's "deflate" is the zlib format (RFC 9110 8.4.1.2). */
export const ENCODINGS = ['gzip', 'deflate'] as const;
export type Encoding = (typeof ENCODINGS)[number];

type Codec = (buf: InputType, opts: ZlibOptions) => Promise<Buffer>;
const DECODE: Record<Encoding, Codec> = { gzip: promisify(gunzip), deflate: promisify(inflate) };
const ENCODE: Record<Encoding, (buf: InputType) => Promise<Buffer>> = { gzip: promisify(gzip), deflate: promisify(deflate) };

/** The codings of a Content-Encoding header in the order they were applied; identity left out. */
export function requestEncodings(header: string | null | undefined): Encoding[] {
  if (!header) return [];
  const out: Encoding[] = [];
  for (const raw of header.split(',')) {
    const token = raw.trim().toLowerCase();
    if (token === '' || token === 'identity') continue;
    // x-gzip is gzip's old name, and RFC 9110 asks recipients to treat it as gzip.
    const name = token === 'x-gzip' ? 'gzip' : token;
    if (!(ENCODINGS as readonly string[]).includes(name)) {
      throw new UnsupportedEncodingError(
        `Content-Encoding '${clip(raw.trim(), 40)}' is not supported; send the body as is, or encoded with ${ENCODINGS.join(' or ')}`,
        ENCODINGS,
      );
    }
    out.push(name as Encoding);
  }
  return out;
}

/**
 * Undo `encodings` (outermost last), never holding more than `limit` decoded
 * bytes: zlib stops at maxOutputLength, so a small body that inflates to
 * gigabytes (a zip bomb) costs `limit` bytes and a 413, not the process.
 */
export async function decodeBody(body: Uint8Array, encodings: readonly Encoding[], limit: number): Promise<Uint8Array> {
  let out = body;
  for (let i = encodings.length - 1; i >= 0; i--) {
    const enc = encodings[i];
    try {
      out = await DECODE[enc](out, { maxOutputLength: Math.max(1, limit) });
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new PayloadTooLargeError(`request body decoded from ${enc} is over the ${limit} byte limit`);
      }
      throw new BadRequestError(`request body is not valid ${enc} data (Content-Encoding: ${enc}): ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * The coding to answer in for an Accept-Encoding header, or undefined for
 * none. Like Triton's server: the highest q among gzip and deflate, gzip on a
 * tie; `*` stands for any coding not named; q=0 refuses.
 */
export function responseEncoding(header: string | null | undefined): Encoding | undefined {
  if (!header) return undefined;
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.split(';').map((x) => x.trim().toLowerCase());
    if (!name) continue;
    let weight = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/.exec(p);
      if (m) weight = Number(m[1]);
    }
    q.set(name, Number.isFinite(weight) ? weight : 0);
  }
  let best: Encoding | undefined;
  let bestQ = 0;
  for (const enc of ENCODINGS) {
    const w = q.get(enc) ?? (enc === 'gzip' ? q.get('x-gzip') : undefined) ?? q.get('*') ?? 0;
    if (w > bestQ) { best = enc; bestQ = w; }
  }
  return best;
}

export function encodeBody(body: Uint8Array, enc: Encoding): Promise<Uint8Array> {
  return ENCODE[enc](body);
}
