import type { Manifest } from '../manifest/types.js';
import type { Tensor } from '../tensor/types.js';
import { BadRequestError, clip } from '../errors.js';
import { tooManyItems } from '../tensor/codec.js';

/**
 * Check a request's tensors against the pipeline's declared inputs before any
 * stage runs: every input present, none unknown, datatype and rank equal,
 * fixed dims equal, the same number of items (dim 0, or the input's batch
 * axis; a per-request input has none) in every input, and
 * no more of them than max_items (413).
 */
export function validateInputs(manifest: Manifest, tensors: Record<string, Tensor>): void {
  const declared = new Map(manifest.inputs.map((s) => [s.name, s]));
  for (const name of Object.keys(tensors)) {
    if (!declared.has(name)) {
      throw new BadRequestError(`unknown input '${clip(name)}'; model '${manifest.name}' takes ${[...declared.keys()].map((n) => `'${n}'`).join(', ')}`);
    }
  }
  let rows: number | undefined;
  let rowsFrom = '';
  for (const spec of manifest.inputs) {
    const t = tensors[spec.name];
    if (!t) throw new BadRequestError(`missing input '${spec.name}'`);
    if (t.datatype !== spec.datatype) {
      throw new BadRequestError(`input '${spec.name}': datatype ${t.datatype} does not match the model's ${spec.datatype}`);
    }
    if (t.shape.length !== spec.shape.length) {
      throw new BadRequestError(`input '${spec.name}': shape [${t.shape}] has rank ${t.shape.length}, the model expects rank ${spec.shape.length} [${spec.shape}]`);
    }
    spec.shape.forEach((d, i) => {
      if (d >= 0 && t.shape[i] !== d) {
        throw new BadRequestError(`input '${spec.name}': shape [${t.shape}] does not match the model's [${spec.shape}] at dim ${i}`);
      }
    });
    // One value for the whole request: no items to count.
    if (spec.perRequest) continue;
    const axis = spec.batchAxis ?? 0;
    const n = t.shape[axis];
    if (n > manifest.maxItems) throw tooManyItems(spec.name, n, manifest.maxItems);
    if (rows === undefined) { rows = n; rowsFrom = spec.name; }
    else if (n !== rows) {
      throw new BadRequestError(`input '${spec.name}' has ${n} items (dim ${axis}) but '${rowsFrom}' has ${rows}`);
    }
  }
}
