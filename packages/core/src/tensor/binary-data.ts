/**
 * Tensor elements in the binary tensor data extension's form: little-endian,
 * row-major, no padding; BOOL one byte per element; each BYTES element a
 * 4-byte little-endian length followed by its bytes.
 */
import { bytesOf, bytesPerElement, typedArrayFor } from './datatypes.js';
import type { Fail } from './json-data.js';
import type { Datatype, NumericData, TensorData } from './types.js';

/** The blob for a tensor's data; numeric data is a view, not a copy. */
export function dataToBlob(dt: Datatype, data: TensorData): Uint8Array {
  if (dt !== 'BYTES') return bytesOf(data as NumericData);
  const elems = data as Uint8Array[];
  let total = 4 * elems.length;
  for (const e of elems) total += e.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let off = 0;
  for (const e of elems) {
    view.setUint32(off, e.byteLength, true);
    out.set(e, off + 4);
    off += 4 + e.byteLength;
  }
  return out;
}

/** Decode one tensor's blob holding `count` elements; the result does not share memory with `blob`. */
export function blobToData(dt: Datatype, blob: Uint8Array, count: number, fail: Fail): TensorData {
  const width = bytesPerElement(dt);
  if (width !== undefined) {
    if (blob.byteLength !== count * width) {
      fail(`binary_data_size is ${blob.byteLength} bytes but ${count} ${dt} elements need ${count * width}`);
    }
    const out = typedArrayFor(dt, blob, 0, count);
    if (dt === 'BOOL') {
      // Storage promises 0/1; any non-zero byte means true.
      const b = out as Uint8Array;
      for (let i = 0; i < count; i++) if (b[i] > 1) b[i] = 1;
    }
    return out;
  }
  if (count * 4 > blob.byteLength) {
    fail(`binary_data_size is ${blob.byteLength} bytes, too small for ${count} BYTES elements`);
  }
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const out: Uint8Array[] = new Array(count);
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > blob.byteLength) fail(`binary BYTES data ends before element ${i} of ${count}`);
    const len = view.getUint32(off, true);
    off += 4;
    if (off + len > blob.byteLength) fail(`binary BYTES element ${i} claims ${len} bytes, past the end of its data`);
    out[i] = blob.slice(off, off + len);
    off += len;
  }
  if (off !== blob.byteLength) {
    fail(`binary BYTES data has ${blob.byteLength - off} bytes left over after ${count} elements`);
  }
  return out;
}
