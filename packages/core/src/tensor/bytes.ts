import type { Item, Tensor } from './types.js';

/**
 * The bytes a tensor's data holds: a typed array's byteLength (a view counts
 * its own part of the buffer, not the whole buffer), or for BYTES the sum of
 * its elements' lengths. What a profile means by bytes in and out.
 */
export function tensorBytes(t: Tensor): number {
  const d = t.data;
  if (!Array.isArray(d)) return (d as ArrayBufferView).byteLength;
  let n = 0;
  for (const b of d as Uint8Array[]) n += b.byteLength;
  return n;
}

export function itemBytes(item: Item): number {
  let n = 0;
  for (const k in item) n += tensorBytes(item[k]);
  return n;
}
