import type { Tensor } from '../tensor/types.js';

/**
 * A node in a request's lineage tree: a request row at level 0, a fan-out
 * child (a text line of an image) one level down. Tensors live on the node
 * whose level they were produced at; descendants can read their ancestors'.
 */
export class LineageNode {
  readonly children: LineageNode[] = [];
  readonly tensors = new Map<string, Tensor>();
  readonly key: string;

  constructor(readonly path: number[], readonly parent?: LineageNode) {
    this.key = path.join('.');
  }

  get level(): number { return this.path.length - 1; }

  /** A tensor from this node or its nearest ancestor that has it. */
  lookup(name: string): Tensor | undefined {
    for (let n: LineageNode | undefined = this; n; n = n.parent) {
      const t = n.tensors.get(name);
      if (t) return t;
    }
    return undefined;
  }

  /** This node (if at `level`) or its descendants at `level`, in lineage order. */
  atLevel(level: number): LineageNode[] {
    if (this.level === level) return [this];
    if (this.level > level) return [];
    return this.children.flatMap((c) => c.atLevel(level));
  }
}
