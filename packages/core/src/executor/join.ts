import type { Manifest } from '../manifest/types.js';
import type { Tensor } from '../tensor/types.js';
import { concatRows, emptyRows, moveBatchAxis, padRows, stackRows } from '../tensor/rows.js';
import { EnsembleError } from '../errors.js';
import type { LineageNode } from './lineage.js';
import { CHUNK_ITEMS, nextTurn } from './chunks.js';

type Outputs = Record<string, Tensor>;

/**
 * The response tensors: each output's items (request rows, or fan-out items
 * at the output's lineage) in lineage order, stacked along a new dim 0.
 * Ragged outputs are padded; companions (lengths, row index) describe them.
 * Synchronous for a small response; a big one is stacked a piece at a time,
 * giving the event loop back between pieces.
 */
export function joinOutputs(m: Manifest, roots: readonly LineageNode[], names: readonly string[]): Outputs | Promise<Outputs> {
  const gathered = names.map((name) => {
    const spec = m.outputs.find((o) => o.name === name)!;
    const base = spec.derived?.of ?? name;
    const chain = m.lineage[base] ?? [];
    return { name, spec, base, nodes: chain.length === 0 ? roots : roots.flatMap((r) => r.at(chain)) };
  });
  const total = gathered.reduce((n, g) => n + g.nodes.length, 0);
  if (total <= CHUNK_ITEMS) {
    const out: Outputs = {};
    for (const g of gathered) out[g.name] = joinOne(g.name, g.spec, g.base, g.nodes);
    return out;
  }
  return (async () => {
    const out: Outputs = {};
    for (const g of gathered) {
      await nextTurn();
      out[g.name] = await joinOneInPieces(g.name, g.spec, g.base, g.nodes);
    }
    return out;
  })();
}

type Spec = Manifest['outputs'][number];

function partsOf(base: string, nodes: readonly LineageNode[]): Tensor[] {
  return nodes.map((n) => {
    const t = n.tensors.get(base);
    if (!t) throw new EnsembleError(`output '${base}' was not produced for item ${n.key}`);
    return t;
  });
}

/** The output's items joined; stacked along dim 0 first, then moved to the output's batch axis. */
function joinOne(name: string, spec: Spec, base: string, nodes: readonly LineageNode[]): Tensor {
  const t = joinAlong0(name, spec, base, nodes);
  return spec.batchAxis ? moveBatchAxis(t, spec.batchAxis) : t;
}

function joinAlong0(name: string, spec: Spec, base: string, nodes: readonly LineageNode[]): Tensor {
  if (spec.derived?.kind === 'row_index') {
    return { datatype: 'INT64', shape: [nodes.length], data: BigInt64Array.from(nodes, (n) => BigInt(n.row)) };
  }
  const parts = partsOf(base, nodes);
  if (spec.derived?.kind === 'lengths') {
    const rank = spec.shape[1];
    return { datatype: 'INT64', shape: [parts.length, rank], data: BigInt64Array.from(parts.flatMap((t) => t.shape.map(BigInt))) };
  }
  if (!parts.length) return emptyRows(spec.datatype, spec.shape.filter((_, a) => a !== (spec.batchAxis ?? 0)));
  return stacked(name, spec, parts);
}

function stacked(name: string, spec: Spec, parts: Tensor[], atLeast?: number[]): Tensor {
  try {
    return spec.ragged ? padRows(parts, spec.ragged.padValue, atLeast) : stackRows(parts);
  } catch (e) {
    throw new EnsembleError(`output '${name}': ${(e as Error).message}`);
  }
}

/** joinOne for many items: pieces of CHUNK_ITEMS stacked one per turn, then put together. */
async function joinOneInPieces(name: string, spec: Spec, base: string, nodes: readonly LineageNode[]): Promise<Tensor> {
  if (nodes.length <= CHUNK_ITEMS) return joinOne(name, spec, base, nodes);
  const parts = partsOf(base, nodes);
  // Every piece of a ragged output pads to the largest item of the whole output.
  let atLeast: number[] | undefined;
  if (spec.ragged && !spec.derived) {
    atLeast = parts[0].shape.slice();
    for (const p of parts) for (let a = 0; a < atLeast.length; a++) atLeast[a] = Math.max(atLeast[a], p.shape[a] ?? 0);
  }
  const pieces: Tensor[] = [];
  for (let begin = 0; begin < parts.length; begin += CHUNK_ITEMS) {
    if (begin > 0) await nextTurn();
    const piece = nodes.slice(begin, begin + CHUNK_ITEMS);
    pieces.push(spec.derived ? joinAlong0(name, spec, base, piece) : stacked(name, spec, parts.slice(begin, begin + CHUNK_ITEMS), atLeast));
  }
  await nextTurn();
  try {
    const t = concatRows(pieces);
    return spec.batchAxis ? moveBatchAxis(t, spec.batchAxis) : t;
  } catch (e) {
    throw new EnsembleError(`output '${name}': ${(e as Error).message}`);
  }
}
