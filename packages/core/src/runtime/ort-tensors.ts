import * as ort from 'onnxruntime-node';
import type { Datatype, Tensor, TensorData } from '../tensor/types.js';
import { EnsembleError } from '../errors.js';

const TO_ORT: Record<Datatype, ort.Tensor.Type> = {
  BOOL: 'bool', UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64',
  INT8: 'int8', INT16: 'int16', INT32: 'int32', INT64: 'int64',
  FP16: 'float16', FP32: 'float32', FP64: 'float64', BYTES: 'string',
};
const FROM_ORT = Object.fromEntries(Object.entries(TO_ORT).map(([k, v]) => [v, k])) as Record<string, Datatype>;

export function datatypeOfOrt(type: string): Datatype | undefined { return FROM_ORT[type]; }

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

export function toOrt(t: Tensor): ort.Tensor {
  if (t.datatype === 'BYTES') {
    return new ort.Tensor('string', (t.data as Uint8Array[]).map((b) => utf8.decode(b)), t.shape);
  }
  // ort takes the typed array as is (no copy) for every numeric type we use.
  return new ort.Tensor(TO_ORT[t.datatype], t.data as Exclude<TensorData, Uint8Array[]>, t.shape);
}

export function fromOrt(o: ort.Tensor, what: string): Tensor {
  const datatype = FROM_ORT[o.type];
  if (!datatype) throw new EnsembleError(`${what}: ONNX Runtime returned unsupported type '${o.type}'`);
  const shape = o.dims.map(Number);
  if (datatype === 'BYTES') return { datatype, shape, data: (o.data as string[]).map((s) => encoder.encode(s)) };
  return { datatype, shape, data: o.data as TensorData };
}
