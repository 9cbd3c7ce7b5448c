import type { Manifest } from '../manifest/types.js';
import type { Tensor } from '../tensor/types.js';
import { emptyRows, padRows, stackRows } from '../tensor/rows.js';
import { EnsembleError } from '../errors.js';
import type { LineageNode } from './lineage.js';

/**
 * The response tensors: each output's items (request rows, or fan-out items
 * at the output's lineage) in lineage order, stacked along a new dim 0.
 * Ragged outputs are padded; companions (lengths, row index) describe them.
 */
export function joinOutputs(m: Manifest, roots: readonly LineageNode[], names: readonly string[]): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const name of names) {
    const spec = m.outputs.find((o) => o.name === name)!;
    const base = spec.derived?.of ?? name;
    const nodes = roots.flatMap((r) => r.at(m.lineage[base] ?? []));
    if (spec.derived?.kind === 'row_index') {
      out[name] = { datatype: 'INT64', shape: [nodes.length], data: BigInt64Array.from(nodes, (n) => BigInt(n.row)) };
      continue;
    }
    const parts = nodes.map((n) => {
      const t = n.tensors.get(base);
      if (!t) throw new EnsembleError(`output '${base}' was not produced for item ${n.key}`);
      return t;
    });
    if (spec.derived?.kind === 'lengths') {
      const rank = spec.shape[1];
      out[name] = { datatype: 'INT64', shape: [parts.length, rank], data: BigInt64Array.from(parts.flatMap((t) => t.shape.map(BigInt))) };
      continue;
    }
    if (!parts.length) {
      out[name] = emptyRows(spec.datatype, spec.shape.slice(1));
      continue;
    }
    try {
      out[name] = spec.ragged ? padRows(parts, spec.ragged.padValue) : stackRows(parts);
    } catch (e) {
      throw new EnsembleError(`output '${name}': ${(e as Error).message}`);
    }
  }
  return out;
}
