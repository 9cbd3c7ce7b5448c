import type { Tensor } from '../tensor/types.js';

/**
 * A node in a request's lineage tree: a request row at the root, a fan-out
 * child (a text line of an image) below it. Each fan-out stage keeps its own
 * list of children, so two fan-outs of one item (regions and tiles of an
 * image) never mix. Tensors live on the node whose lineage they were produced
 * at; descendants can read their ancestors'.
 */
export class LineageNode {
  /** Children by the fan-out stage that made them, in the order it returned them. */
  readonly fanouts = new Map<string, LineageNode[]>();
  readonly tensors = new Map<string, Tensor>();
  /** Unique within the request: `0`, `0.crop[3]`, `0.crop[3].words[1]`. */
  readonly key: string;
  /** The fan-out stages from the root to this node, outermost first. */
  readonly chain: readonly string[];
  /** Index of the request row this node descends from. */
  readonly row: number;

  constructor(row: number, parent?: LineageNode, fanout?: string, index?: number) {
    this.row = row;
    this.parent = parent;
    if (parent && fanout !== undefined) {
      this.chain = [...parent.chain, fanout];
      this.key = `${parent.key}.${fanout}[${index}]`;
    } else {
      this.chain = [];
      this.key = String(row);
    }
  }

  readonly parent: LineageNode | undefined;

  get level(): number { return this.chain.length; }

  /** A tensor from this node or its nearest ancestor that has it. */
  lookup(name: string): Tensor | undefined {
    for (let n: LineageNode | undefined = this; n; n = n.parent) {
      const t = n.tensors.get(name);
      if (t) return t;
    }
    return undefined;
  }

  /** Add the children a fan-out stage produced for this node. */
  addChildren(fanout: string, count: number): LineageNode[] {
    const list = Array.from({ length: count }, (_, j) => new LineageNode(this.row, this, fanout, j));
    this.fanouts.set(fanout, list);
    return list;
  }

  /**
   * The nodes under this one (or itself) whose chain is `chain`, in lineage
   * order. Empty while the fan-outs on the way have not run yet.
   */
  at(chain: readonly string[]): LineageNode[] {
    const depth = this.chain.length;
    if (depth === chain.length) return [this];
    if (depth > chain.length) return [];
    const next = this.fanouts.get(chain[depth]);
    if (!next) return [];
    return next.flatMap((c) => c.at(chain));
  }
}
