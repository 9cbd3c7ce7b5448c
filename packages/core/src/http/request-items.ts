import type { Manifest } from '../manifest/types.js';
import type { Tensor } from '../tensor/types.js';

/**
 * How many items (rows) a validated request holds: the executor cuts every
 * input that is not per-request along its batch axis, into as many items
 * as the shortest of them has.
 */
export function requestItems(m: Manifest, tensors: Record<string, Tensor>): number {
  let rows: number | undefined;
  for (const spec of m.inputs) {
    if (spec.perRequest) continue;
    const n = tensors[spec.name]?.shape[spec.batchAxis ?? 0];
    if (n !== undefined) rows = rows === undefined ? n : Math.min(rows, n);
  }
  return rows ?? 0;
}
