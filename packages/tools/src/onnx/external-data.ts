/**
 * ONNX external data (weights kept in side files next to the .onnx, as
 * exporters write models over 2 GB or when asked to) folded back into the
 * model: each such initializer's bytes read from its file at its offset and
 * stored in its raw_data. A served stage is one weights object (one key,
 * one sha256), so a pipeline's model must be self-contained.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { EnsembleError } from '@ensemble/core/errors.js';
import { decodeModel, encodeModel, onnx } from './proto.js';

/** Protobuf's limit on one message: a model past it cannot hold its weights inside. */
export const PROTOBUF_LIMIT_BYTES = 2 ** 31 - 1;

const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

/** Every tensor a graph holds (initializers, Constant nodes' values), subgraphs included. */
function tensorsOf(graph: onnx.IGraphProto, out: onnx.ITensorProto[] = []): onnx.ITensorProto[] {
  out.push(...(graph.initializer ?? []));
  for (const node of graph.node ?? []) {
    for (const a of node.attribute ?? []) {
      if (a.t) out.push(a.t);
      out.push(...(a.tensors ?? []));
      if (a.g) tensorsOf(a.g, out);
      for (const g of a.graphs ?? []) tensorsOf(g, out);
    }
  }
  return out;
}

/**
 * The model with every external tensor's bytes inside it, and the files they
 * came from; the model unchanged (and no files) when none is external.
 * `modelFile` is where the model was read from: locations are relative to
 * its folder, and may not leave it (as ONNX Runtime requires).
 */
export async function embedExternalData(bytes: Uint8Array, modelFile: string): Promise<{ bytes: Uint8Array; files: string[] }> {
  const model = decodeModel(bytes);
  const external = tensorsOf(model.graph ?? {}).filter((t) => t.dataLocation === EXTERNAL);
  if (external.length === 0) return { bytes, files: [] };
  const dir = path.dirname(path.resolve(modelFile));
  const files = new Set<string>();
  let total = bytes.byteLength;
  for (const t of external) {
    const entry = (key: string) => t.externalData?.find((e) => e.key === key)?.value ?? undefined;
    const location = entry('location');
    const who = `initializer '${t.name ?? '?'}'`;
    if (!location) throw new EnsembleError(`${who} is stored as external data with no location`, 'invalid_input');
    const file = path.resolve(dir, location);
    const rel = path.relative(dir, file);
    if (path.isAbsolute(location) || rel === '..' || rel.startsWith(`..${path.sep}`)) {
      throw new EnsembleError(`${who} keeps its weights in ${location}, outside the model's folder ${dir}`, 'invalid_input');
    }
    const offset = Number(entry('offset') ?? 0);
    const handle = await open(file).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw new EnsembleError(`${who} keeps its weights in ${location}, which is not next to the model (${file}): copy it there`, 'invalid_input');
      throw new EnsembleError(`${who} keeps its weights in ${location}, which cannot be read: ${e.message}`, 'invalid_input');
    });
    try {
      const size = (await handle.stat()).size;
      const length = entry('length') !== undefined ? Number(entry('length')) : size - offset;
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        throw new EnsembleError(`${who}: ${location} holds ${size} bytes, not the ${length} at offset ${offset} the model names`, 'invalid_input');
      }
      total += length;
      if (total > PROTOBUF_LIMIT_BYTES) {
        throw new EnsembleError(`the model and its external weights come to over 2 GB, more than one .onnx file can hold, and a stage's weights are one file`, 'invalid_input');
      }
      const data = new Uint8Array(length);
      const { bytesRead } = await handle.read(data, 0, length, offset);
      if (bytesRead !== length) throw new EnsembleError(`${who}: read ${bytesRead} of ${length} bytes from ${location}`, 'invalid_input');
      t.rawData = data;
    } finally {
      await handle.close();
    }
    t.externalData = [];
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
    files.add(location);
  }
  return { bytes: encodeModel(model), files: [...files] };
}
