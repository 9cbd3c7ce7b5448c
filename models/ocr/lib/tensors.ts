/**
 * Reading and building the per-item tensors the OCR stages exchange. A tensor
 * of the wrong type here is a wiring bug in the manifest (or a bad model
 * output), not bad caller input, so these throw plain Errors (HTTP 500).
 */
import type { Item, Tensor } from '@ensemble/core';

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function count(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function take(item: Item, name: string, datatype: Tensor['datatype'], rank: number): Tensor {
  const t = item[name];
  if (!t) throw new Error(`input '${name}' is missing`);
  if (t.datatype !== datatype) throw new Error(`input '${name}' is ${t.datatype}, expected ${datatype}`);
  if (t.shape.length !== rank) throw new Error(`input '${name}' has shape ${fmt(t.shape)}, expected rank ${rank}`);
  if (t.data.length !== count(t.shape)) throw new Error(`input '${name}' has ${t.data.length} elements for shape ${fmt(t.shape)}`);
  return t;
}

export function takeFloat32(item: Item, name: string, rank: number): { shape: number[]; data: Float32Array } {
  const t = take(item, name, 'FP32', rank);
  if (!(t.data instanceof Float32Array)) throw new Error(`input '${name}' is FP32 but not stored as a Float32Array`);
  return { shape: t.shape, data: t.data };
}

export function takeUint8(item: Item, name: string, rank: number): { shape: number[]; data: Uint8Array } {
  const t = take(item, name, 'UINT8', rank);
  if (!(t.data instanceof Uint8Array)) throw new Error(`input '${name}' is UINT8 but not stored as a Uint8Array`);
  return { shape: t.shape, data: t.data };
}

/** The single byte string of a BYTES scalar (shape []) or one-element tensor. */
export function takeBytesScalar(item: Item, name: string): Uint8Array {
  const t = item[name];
  if (!t) throw new Error(`input '${name}' is missing`);
  if (t.datatype !== 'BYTES' || !Array.isArray(t.data)) throw new Error(`input '${name}' is ${t.datatype}, expected BYTES`);
  if (t.data.length !== 1 || count(t.shape) !== 1) throw new Error(`input '${name}' has shape ${fmt(t.shape)}, expected one element`);
  return t.data[0];
}

export function float32(shape: number[], data: Float32Array): Tensor {
  return { datatype: 'FP32', shape, data };
}

export function uint8(shape: number[], data: Uint8Array): Tensor {
  return { datatype: 'UINT8', shape, data };
}

export function float32Scalar(value: number): Tensor {
  return { datatype: 'FP32', shape: [], data: new Float32Array([value]) };
}

export function bytesScalar(value: Uint8Array): Tensor {
  return { datatype: 'BYTES', shape: [], data: [value] };
}
