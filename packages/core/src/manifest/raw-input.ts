import type { Manifest } from './types.js';
import type { Tensor } from '../tensor/types.js';
import { BadRequestError } from '../errors.js';
import { bytesPerElement, typedArrayFor } from '../tensor/datatypes.js';

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

/**
 * The binary tensor data extension's raw binary request
 * (`Inference-Header-Content-Length: 0`): the whole body is the data of the
 * pipeline's one input, for one item, its shape deduced from the body's size
 * as Triton deduces it. The item's shape may have at most one free
 * dimension; a BYTES input's item must be one element (the body is that
 * element, with no length prefix).
 */
export function rawBinaryTensors(m: Manifest, body: Uint8Array): Record<string, Tensor> {
  const fail = (why: string): never => { throw new BadRequestError(`raw binary request (Inference-Header-Content-Length: 0): ${why}`); };
  if (m.inputs.length !== 1) {
    fail(`model '${m.name}' has ${m.inputs.length} inputs (${m.inputs.map((i) => `'${i.name}'`).join(', ')}); a raw body can be the data of a single input only, send the inference header`);
  }
  const spec = m.inputs[0];
  const axis = spec.perRequest ? -1 : (spec.batchAxis ?? 0);
  // The shape with the item axis as one item; the free dims the body's size decides.
  const shape = spec.shape.map((d, i) => (i === axis ? 1 : d));
  const free = shape.flatMap((d, i) => (d < 0 ? [i] : []));
  if (free.length > 1) fail(`input '${spec.name}' has ${free.length} free dimensions (shape [${spec.shape.join(', ')}]); its shape cannot be deduced from the body's size`);
  const fixed = shape.reduce((n, d) => (d < 0 ? n : n * d), 1);
  if (spec.datatype === 'BYTES') {
    if (free.length > 0 || fixed !== 1) fail(`input '${spec.name}' is BYTES of shape [${spec.shape.join(', ')}]: a raw body is one element, and an item of it holds ${free.length ? 'a free number' : fixed}`);
    return { [spec.name]: { datatype: 'BYTES', shape, data: [body] } };
  }
  const width = bytesPerElement(spec.datatype)!;
  const perElement = fixed * width;
  if (body.byteLength % perElement !== 0 || (free.length === 0 && body.byteLength !== perElement)) {
    fail(`${body.byteLength} bytes is not ${free.length ? `a multiple of ${perElement}` : String(perElement)} (input '${spec.name}', ${spec.datatype} of shape [${spec.shape.join(', ')}], one item)`);
  }
  if (free.length) shape[free[0]] = body.byteLength / perElement;
  const count = body.byteLength / width;
  const data = typedArrayFor(spec.datatype, body, 0, count);
  if (spec.datatype === 'BOOL') for (let i = 0; i < count; i++) if (data[i] > 1) (data as Uint8Array)[i] = 1;
  return { [spec.name]: { datatype: spec.datatype, shape, data } };
}
