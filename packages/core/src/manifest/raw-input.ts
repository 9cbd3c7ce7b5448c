import type { Manifest } from './types.js';
import type { Tensor } from '../tensor/types.js';
import { BadRequestError } from '../errors.js';

/**
 * The tensors a raw body (an image's bytes) stands for: the one BYTES input
 * of a pipeline that has a single input. Shared by the synchronous endpoint
 * and batch jobs, so an image object in a job decodes as the same image
 * posted to /infer.
 */
export function rawInputTensors(m: Manifest, body: Uint8Array, what: string): Record<string, Tensor> {
  const bytesInputs = m.inputs.filter((i) => i.datatype === 'BYTES');
  if (m.inputs.length !== 1 || bytesInputs.length !== 1) {
    throw new BadRequestError(`${what}: raw bodies are only for models with one BYTES input; send Open Inference Protocol JSON to '${m.name}'`);
  }
  return { [bytesInputs[0].name]: { datatype: 'BYTES', shape: [1], data: [body] } };
}
