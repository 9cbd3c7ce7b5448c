import type { Datatype, NumericData, Tensor } from '../tensor/types.js';
import { arrayTypeFor, bytesOf, bytesPerElement, elementCount, typedArrayFor } from '../tensor/datatypes.js';
import { dataToBlob } from '../tensor/binary-data.js';
import { EnsembleError } from '../errors.js';
import type { PayloadWriter } from './frames.js';

/**
 * Tensors in a frame's payload (frames.ts). A numeric tensor is its typed
 * array's bytes (little-endian, row-major); a BYTES tensor is each element as
 * a u32 LE length and its bytes (the binary tensor extension's form).
 *
 * A group is one tensor of every item of a batch, back to back in one
 * segment: items of one shape then already are the batch tensor, and the
 * reader hands it over as one view, stacked without a copy.
 */

/** One tensor: where it is in the payload and what it is. */
export interface TensorMeta {
  datatype: Datatype;
  shape: number[];
  offset: number;
  bytes: number;
}

/** The tensors of one input name, one per item, back to back from `offset`. */
export interface GroupMeta {
  datatype: Datatype;
  shapes: number[][];
  offset: number;
  bytes: number;
}

/** A group as read: the items' tensors, and the batch [n, ...shape] they form when all have one shape. */
export interface ReadGroup {
  parts: Tensor[];
  stacked?: Tensor;
}

/** The bytes a tensor is written as; numeric data is a view of its storage, BYTES are packed (one copy of small strings). */
function blobOf(t: Tensor): Uint8Array {
  return t.datatype === 'BYTES' ? dataToBlob('BYTES', t.data) : bytesOf(t.data as NumericData);
}

/** Append one tensor as a segment of its own. */
export function addTensor(w: PayloadWriter, t: Tensor): TensorMeta {
  const offset = w.segment();
  const blob = blobOf(t);
  w.add(blob);
  return { datatype: t.datatype, shape: t.shape, offset, bytes: blob.byteLength };
}

/** Append tensors of one datatype back to back as one segment. */
export function addGroup(w: PayloadWriter, parts: readonly Tensor[], what: string): GroupMeta {
  const datatype = parts[0].datatype;
  const offset = w.segment();
  let bytes = 0;
  const shapes: number[][] = new Array(parts.length);
  parts.forEach((p, i) => {
    if (p.datatype !== datatype) throw new EnsembleError(`${what}: part ${i} has datatype ${p.datatype}, part 0 has ${datatype}`);
    const blob = blobOf(p);
    w.add(blob);
    bytes += blob.byteLength;
    shapes[i] = p.shape;
  });
  return { datatype, shapes, offset, bytes };
}

function region(payload: Uint8Array, offset: number, bytes: number, what: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(bytes) || offset < 0 || bytes < 0 || offset + bytes > payload.byteLength) {
    throw new EnsembleError(`${what}: ${bytes} bytes at offset ${offset} are outside a payload of ${payload.byteLength}`);
  }
}

/** A view of `count` elements at `offset` (a copy only if the offset is not aligned for the type, which our writer never does). */
function numericView(dt: Exclude<Datatype, 'BYTES'>, payload: Uint8Array, offset: number, count: number): NumericData {
  const Ctor = arrayTypeFor(dt);
  const at = payload.byteOffset + offset;
  if (at % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(payload.buffer as ArrayBuffer, at, count);
  return typedArrayFor(dt, payload, offset, count);
}

/** BYTES elements as views of the payload: each a u32 LE length, then its bytes. */
function bytesElements(payload: Uint8Array, offset: number, bytes: number, count: number, what: string): Uint8Array[] {
  const view = new DataView(payload.buffer, payload.byteOffset + offset, bytes);
  const out: Uint8Array[] = new Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes) throw new EnsembleError(`${what}: BYTES data ends before element ${i} of ${count}`);
    const len = view.getUint32(at, true);
    at += 4;
    if (at + len > bytes) throw new EnsembleError(`${what}: BYTES element ${i} claims ${len} bytes, past the end of its data`);
    out[i] = payload.subarray(offset + at, offset + at + len);
    at += len;
  }
  if (at !== bytes) throw new EnsembleError(`${what}: BYTES data has ${bytes - at} bytes left over after ${count} elements`);
  return out;
}

function checkShape(shape: unknown, what: string): asserts shape is number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new EnsembleError(`${what}: bad shape ${JSON.stringify(shape)}`);
  }
}

function elementsOf(dt: Datatype, payload: Uint8Array, offset: number, bytes: number, count: number, what: string) {
  region(payload, offset, bytes, what);
  if (dt === 'BYTES') return bytesElements(payload, offset, bytes, count, what);
  const width = bytesPerElement(dt);
  if (width === undefined) throw new EnsembleError(`${what}: unknown datatype ${String(dt)}`);
  if (bytes !== count * width) throw new EnsembleError(`${what}: ${bytes} bytes for ${count} ${dt} elements (need ${count * width})`);
  return numericView(dt, payload, offset, count);
}

/** One tensor out of a payload, as a view of it (BYTES: each element a view). */
export function readTensor(payload: Uint8Array, m: TensorMeta, what: string): Tensor {
  checkShape(m.shape, what);
  return { datatype: m.datatype, shape: m.shape, data: elementsOf(m.datatype, payload, m.offset, m.bytes, elementCount(m.shape), what) };
}

/** A group out of a payload: every part a view, and the stacked batch when the parts share one shape. */
export function readGroup(payload: Uint8Array, m: GroupMeta, what: string): ReadGroup {
  if (!Array.isArray(m.shapes) || m.shapes.length === 0) throw new EnsembleError(`${what}: a group of no tensors`);
  const counts = m.shapes.map((s) => { checkShape(s, what); return elementCount(s); });
  const total = counts.reduce((a, b) => a + b, 0);
  const all = elementsOf(m.datatype, payload, m.offset, m.bytes, total, what);
  const parts: Tensor[] = new Array(m.shapes.length);
  let at = 0;
  for (let i = 0; i < counts.length; i++) {
    const data = Array.isArray(all) ? all.slice(at, at + counts[i]) : (all as Uint8Array).subarray(at, at + counts[i]) as NumericData;
    parts[i] = { datatype: m.datatype, shape: m.shapes[i], data };
    at += counts[i];
  }
  const first = m.shapes[0];
  const same = m.shapes.every((s) => s.length === first.length && s.every((d, a) => d === first[a]));
  return same ? { parts, stacked: { datatype: m.datatype, shape: [m.shapes.length, ...first], data: all } } : { parts };
}
