import { readFile } from 'node:fs/promises';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import type { Tensor } from '@ensemble/core/tensor/types.js';
import { allocate, elementCount } from '@ensemble/core/tensor/datatypes.js';
import { decodeInferRequest } from '@ensemble/core/tensor/codec.js';
import { EnsembleError } from '@ensemble/core/errors.js';

/**
 * Sample requests for tune: a `.json` file is an Open Inference Protocol
 * request body; any other file is the raw value of the pipeline's one BYTES
 * input (an image for OCR).
 */
export async function readSampleRequests(m: Manifest, files: string[]): Promise<Record<string, Tensor>[]> {
  const out: Record<string, Tensor>[] = [];
  for (const f of files) {
    const bytes = new Uint8Array(await readFile(f));
    if (f.toLowerCase().endsWith('.json')) {
      out.push(decodeInferRequest(bytes).tensors);
      continue;
    }
    const only = m.inputs.length === 1 && m.inputs[0].datatype === 'BYTES' ? m.inputs[0] : undefined;
    if (!only) throw new EnsembleError(`${f}: a raw file is only a request for a pipeline with one BYTES input; give '${m.name}' an inference request as .json`, 'usage');
    out.push({ [only.name]: { datatype: 'BYTES', shape: [1], data: [bytes] } });
  }
  return out;
}

/** Free dims of synthesized inputs get this size. */
const FREE_DIM = 16;

/** Without sample files: one row per input, deterministic values, for pipelines whose inputs are all numeric. */
export function syntheticRequests(m: Manifest, count = 4): Record<string, Tensor>[] {
  const bytes = m.inputs.find((i) => i.datatype === 'BYTES');
  if (bytes) throw new EnsembleError(`pipeline '${m.name}' takes ${bytes.name} (BYTES): give sample requests with --request FILE (an image, or an inference request .json)`, 'usage');
  return Array.from({ length: count }, (_, r) => Object.fromEntries(m.inputs.map((spec) => {
    const shape = [1, ...spec.shape.slice(1).map((d) => (d < 0 ? FREE_DIM : d))];
    const data = allocate(spec.datatype, elementCount(shape));
    for (let i = 0; i < data.length; i++) {
      const v = Math.sin(r * 97 + i * 13.37);
      if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[i] = BigInt(Math.abs(Math.round(v * 9)));
      else if (data instanceof Float32Array || data instanceof Float64Array) data[i] = v;
      else if (spec.datatype === 'BOOL') (data as Uint8Array)[i] = v > 0 ? 1 : 0;
      else (data as Uint8Array)[i] = Math.abs(Math.round(v * 9));
    }
    return [spec.name, { datatype: spec.datatype, shape, data } as Tensor];
  })));
}
