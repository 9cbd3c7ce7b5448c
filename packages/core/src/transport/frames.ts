import type { Writable } from 'node:stream';
import { EnsembleError } from '../errors.js';

/**
 * Messages on the data pipe between the pool and a stage worker: a fixed
 * prefix, a small JSON header and a payload of raw bytes.
 *
 *   prefix   16 bytes: u32 LE magic 'ENSF', u32 LE header length, f64 LE payload length
 *   header   UTF-8 JSON (the tensors' metadata: datatype, shape, offset in the payload)
 *   payload  the tensors' bytes, each segment starting at a multiple of 8
 *
 * The writer never copies the payload: its parts (views of the tensors'
 * typed arrays) go to the socket as they are, in one writev. The reader puts
 * each payload in a buffer of its own, allocated at its full length once the
 * header is read, so a segment at a multiple of 8 is aligned for every typed
 * array and tensors are read as views over it, not copied out.
 */

export const FRAME_MAGIC = 0x46534e45; // 'ENSF' little-endian
export const PREFIX_BYTES = 16;
/** A header this long is a garbled stream, not a batch's metadata. */
const MAX_HEADER_BYTES = 64 << 20;
const ALIGN = 8;
const ZEROS = new Uint8Array(ALIGN);

export interface Frame<H = unknown> {
  header: H;
  /** Its own buffer (offset 0 of an ArrayBuffer of its own), or empty. */
  payload: Uint8Array;
  /** Time the reader spent on this frame's bytes (ms): copying pushed chunks, parsing the header; not the waits between reads. */
  readMs: number;
}

/** The payload of a frame being written: the parts in order, each segment aligned. */
export class PayloadWriter {
  readonly parts: Uint8Array[] = [];
  length = 0;

  /** Start a segment at the next multiple of 8; its offset in the payload. */
  segment(): number {
    const pad = (ALIGN - (this.length % ALIGN)) % ALIGN;
    if (pad) this.add(ZEROS.subarray(0, pad));
    return this.length;
  }

  /** Append bytes as they are (the view is written, not a copy of it). */
  add(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    this.parts.push(bytes);
    this.length += bytes.byteLength;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The prefix and header of a frame, in one buffer. */
export function frameHead(header: unknown, payloadLength: number): Uint8Array {
  const json = encoder.encode(JSON.stringify(header));
  const head = new Uint8Array(PREFIX_BYTES + json.byteLength);
  const view = new DataView(head.buffer);
  view.setUint32(0, FRAME_MAGIC, true);
  view.setUint32(4, json.byteLength, true);
  view.setFloat64(8, payloadLength, true);
  head.set(json, PREFIX_BYTES);
  return head;
}

/**
 * Write one frame: its head and every payload part in one corked writev, so
 * the kernel copies them straight from the tensors' memory. The parts must
 * not change until the stream has written them (it keeps the views, not
 * copies). Returns what the last write returned (false: the pipe is full and
 * the stream buffers the rest).
 */
export function writeFrame(out: Writable, header: unknown, payload?: PayloadWriter): boolean {
  const head = frameHead(header, payload?.length ?? 0);
  if (!payload || payload.parts.length === 0) return out.write(head);
  out.cork();
  let ok = out.write(head);
  for (const p of payload.parts) ok = out.write(p);
  out.uncork();
  return ok;
}

export interface FrameReaderOptions<H> {
  onFrame: (frame: Frame<H>) => void;
  /** A stream that is not frames (a bad magic, an impossible length): the reader stops. */
  onError: (e: Error) => void;
  /**
   * Where a payload of `bytes` goes (default: a new buffer of its own). It
   * must start at a multiple of 8 and be `bytes` long; a reader that knows
   * when a payload is done with can hand the same memory out again.
   */
  payloadBuffer?: (bytes: number) => Uint8Array;
}

/**
 * Reassembles frames from a byte stream however it is cut. Two ways to feed it:
 * push(chunk) copies the chunk's bytes where they go (a 'data' listener), or
 * readTarget()/commit(n) has the next read land where the bytes go (a socket's
 * `onread` option), so a payload is read from the kernel straight into its
 * buffer with no copy at all.
 */
export class FrameReader<H = unknown> {
  private head = new Uint8Array(PREFIX_BYTES);
  private headFill = 0;
  private headerLength = -1;
  private payload?: Uint8Array;
  private payloadFill = 0;
  private failed = false;
  /** The reader's own time on the frame under way (ms). */
  private busyMs = 0;
  private pieceStart = 0;
  /** Frames completed by the bytes being handled, told once they are all handled. */
  private done: Frame<H>[] = [];

  constructor(private readonly opts: FrameReaderOptions<H>) {}

  /** Bytes received of the frame under way (0 between frames): what a stream that ends mid-frame lost. */
  get pending(): number { return this.headFill + this.payloadFill; }

  /** Where the next read should put its bytes: exactly what the frame under way still needs, no more. */
  readTarget(): Uint8Array {
    if (this.payload) return this.payload.subarray(this.payloadFill);
    return this.head.subarray(this.headFill);
  }

  /** `n` bytes were read into the last readTarget(). */
  commit(n: number): void {
    if (this.failed || n <= 0) return;
    this.pieceStart = performance.now();
    this.advance(n);
    this.busyMs += performance.now() - this.pieceStart;
    this.emit();
  }

  /** Bytes as they came (a 'data' chunk): copied into the head or the payload of the frame they belong to. */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.byteLength && !this.failed) {
      this.pieceStart = performance.now();
      const target = this.readTarget();
      const n = Math.min(target.byteLength, chunk.byteLength - at);
      target.set(chunk.subarray(at, at + n));
      at += n;
      this.advance(n);
      this.busyMs += performance.now() - this.pieceStart;
    }
    this.emit();
  }

  private advance(n: number): void {
    if (this.payload) {
      this.payloadFill += n;
      if (this.payloadFill === this.payload.byteLength) this.finish();
    } else {
      this.headFill += n;
      this.headProgress();
    }
  }

  private emit(): void {
    if (this.done.length === 0) return;
    const frames = this.done;
    this.done = [];
    for (const f of frames) this.opts.onFrame(f);
  }

  private headProgress(): void {
    if (this.headerLength < 0) {
      if (this.headFill < PREFIX_BYTES) return;
      const view = new DataView(this.head.buffer, this.head.byteOffset, PREFIX_BYTES);
      const magic = view.getUint32(0, true);
      const headerLength = view.getUint32(4, true);
      if (magic !== FRAME_MAGIC || headerLength > MAX_HEADER_BYTES) {
        this.fail(`not a frame (magic 0x${magic.toString(16)}, header ${headerLength} bytes)`);
        return;
      }
      const prefix = this.head.subarray(0, PREFIX_BYTES);
      this.head = new Uint8Array(PREFIX_BYTES + headerLength);
      this.head.set(prefix);
      this.headerLength = headerLength;
    }
    if (this.headFill < PREFIX_BYTES + this.headerLength) return;
    const payloadLength = new DataView(this.head.buffer, this.head.byteOffset, PREFIX_BYTES).getFloat64(8, true);
    if (!Number.isSafeInteger(payloadLength) || payloadLength < 0) {
      this.fail(`a frame claims a payload of ${payloadLength} bytes`);
      return;
    }
    let payload: Uint8Array;
    try {
      // Not zero-filled: every byte is written by the reads before anyone sees it.
      payload = payloadLength === 0 ? new Uint8Array(0) : this.opts.payloadBuffer?.(payloadLength) ?? Buffer.allocUnsafeSlow(payloadLength);
    } catch (e) {
      this.fail(`a frame's payload of ${payloadLength} bytes cannot be allocated (${e instanceof Error ? e.message : String(e)})`);
      return;
    }
    this.payload = payload;
    this.payloadFill = 0;
    if (payloadLength === 0) this.finish();
  }

  private finish(): void {
    let header: H;
    try {
      header = JSON.parse(decoder.decode(this.head.subarray(PREFIX_BYTES))) as H;
    } catch (e) {
      this.fail(`a frame's header is not JSON (${e instanceof Error ? e.message : String(e)})`);
      return;
    }
    const payload = this.payload!;
    this.head = new Uint8Array(PREFIX_BYTES);
    this.headFill = 0;
    this.headerLength = -1;
    this.payload = undefined;
    this.payloadFill = 0;
    const now = performance.now();
    this.done.push({ header, payload, readMs: this.busyMs + now - this.pieceStart });
    // What the rest of the bytes in hand cost is the next frame's.
    this.busyMs = 0;
    this.pieceStart = now;
  }

  private fail(message: string): void {
    this.failed = true;
    this.opts.onError(new EnsembleError(`data pipe: ${message}`));
  }
}
