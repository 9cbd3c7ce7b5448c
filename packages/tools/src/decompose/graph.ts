/**
 * The dependency view of an ONNX graph that cutting needs: nodes in a
 * topological order, what each one reads and writes, and which tensors are
 * weights. Weights (initializers, Constant nodes, and nodes that compute only
 * from weights — paddle2onnx's Cast-of-a-constant shape helpers) are not
 * placed in a stage: every stage that reads one gets its own copy, so no
 * weight ever crosses a cut.
 */
import { EnsembleError } from '@ensemble/core/errors.js';
import { onnx } from '../onnx/proto.js';

export interface GraphNode {
  /** Position in the file's node list; the topological sort keeps file order where it can. */
  index: number;
  /** Position in the topological order of all nodes (weight nodes included). */
  rank: number;
  proto: onnx.INodeProto;
  /** Explicit inputs plus the names If/Loop/Scan bodies take from this scope. */
  consumes: string[];
  produces: string[];
}

export type Weight =
  | { name: string; kind: 'initializer'; tensor: onnx.ITensorProto }
  | { name: string; kind: 'sparse'; sparse: onnx.ISparseTensorProto }
  /** A Constant node, or a node whose inputs are all weights. */
  | { name: string; kind: 'node'; node: GraphNode };

export interface ModelGraph {
  model: onnx.ModelProto;
  graph: onnx.GraphProto;
  /** Graph inputs a caller feeds (initializers listed as inputs are weights, not these). */
  inputs: onnx.IValueInfoProto[];
  outputs: onnx.IValueInfoProto[];
  weights: Map<string, Weight>;
  /** Initializers also declared as graph inputs (IR < 4 style): stage models declare them too. */
  initializerInputs: Map<string, onnx.IValueInfoProto>;
  /** Nodes that compute on data, topologically ordered; only those that feed a graph output. */
  nodes: GraphNode[];
  /** Position of each compute node in `nodes`. */
  position: Map<GraphNode, number>;
  /** Compute node producing each non-weight tensor. */
  producer: Map<string, GraphNode>;
  /** Declared types: graph.value_info, inputs and outputs. */
  valueInfo: Map<string, onnx.IValueInfoProto>;
  /** Nodes feeding no graph output, dropped. */
  prunedNodes: number;
}

/** Ops whose output is not a function of their inputs: never folded into weights. */
const NONDETERMINISTIC = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

const isStandardDomain = (d: string | null | undefined): boolean => !d || d === 'ai.onnx';

function subgraphs(node: onnx.INodeProto): onnx.IGraphProto[] {
  const out: onnx.IGraphProto[] = [];
  for (const a of node.attribute ?? []) {
    if (a.g) out.push(a.g);
    for (const g of a.graphs ?? []) out.push(g);
  }
  return out;
}

/** Names a subgraph reads from enclosing scopes (ONNX lets If/Loop bodies see outer tensors). */
function outerNames(g: onnx.IGraphProto): Set<string> {
  const defined = new Set<string>();
  for (const v of g.input ?? []) defined.add(v.name ?? '');
  for (const t of g.initializer ?? []) defined.add(t.name ?? '');
  for (const s of g.sparseInitializer ?? []) defined.add(s.values?.name ?? '');
  for (const n of g.node ?? []) for (const o of n.output ?? []) defined.add(o);
  const used = new Set<string>();
  for (const n of g.node ?? []) {
    for (const i of n.input ?? []) if (i && !defined.has(i)) used.add(i);
    for (const sub of subgraphs(n)) for (const i of outerNames(sub)) if (!defined.has(i)) used.add(i);
  }
  for (const o of g.output ?? []) if (o.name && !defined.has(o.name)) used.add(o.name);
  return used;
}

function toGraphNode(proto: onnx.INodeProto, index: number): GraphNode {
  const consumes = new Set((proto.input ?? []).filter((i) => i !== ''));
  for (const sub of subgraphs(proto)) for (const i of outerNames(sub)) consumes.add(i);
  return { index, rank: -1, proto, consumes: [...consumes], produces: (proto.output ?? []).filter((o) => o !== '') };
}

/** A min-heap on node index, so ready nodes come out in file order. */
class ReadyQueue {
  private readonly heap: GraphNode[] = [];
  get size(): number { return this.heap.length; }
  push(n: GraphNode): void {
    const h = this.heap;
    h.push(n);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (h[p].index <= h[i].index) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }
  pop(): GraphNode {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l].index < h[m].index) m = l;
        if (r < h.length && h[r].index < h[m].index) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }
}

/** Kahn's algorithm; among ready nodes the earliest in the file goes first. */
function topologicalOrder(nodes: GraphNode[], available: Set<string>): GraphNode[] {
  const producer = new Map<string, GraphNode>();
  for (const n of nodes) {
    for (const o of n.produces) {
      if (producer.has(o) || available.has(o)) {
        throw new EnsembleError(`tensor '${o}' is produced twice (again by node '${n.proto.name || n.proto.opType}')`, 'invalid_input');
      }
      producer.set(o, n);
    }
  }
  const waiting = new Map<GraphNode, number>();
  const dependents = new Map<string, GraphNode[]>();
  const ready = new ReadyQueue();
  for (const n of nodes) {
    let count = 0;
    for (const i of n.consumes) {
      if (available.has(i)) continue;
      if (!producer.has(i)) {
        throw new EnsembleError(`node '${n.proto.name || n.proto.opType}' reads '${i}', which no node, input or initializer provides`, 'invalid_input');
      }
      count++;
      const list = dependents.get(i) ?? [];
      list.push(n);
      dependents.set(i, list);
    }
    waiting.set(n, count);
    if (count === 0) ready.push(n);
  }
  const order: GraphNode[] = [];
  while (ready.size > 0) {
    const n = ready.pop();
    order.push(n);
    for (const o of n.produces) {
      for (const d of dependents.get(o) ?? []) {
        const left = waiting.get(d)! - 1;
        waiting.set(d, left);
        if (left === 0) ready.push(d);
      }
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.filter((n) => waiting.get(n)! > 0).slice(0, 3).map((n) => n.proto.name || n.proto.opType);
    throw new EnsembleError(`the graph has a cycle (through ${stuck.join(', ')})`, 'invalid_input');
  }
  return order;
}

export function analyzeModel(model: onnx.ModelProto): ModelGraph {
  const graph = model.graph as onnx.GraphProto | null;
  if (!graph) throw new EnsembleError('the model has no graph', 'invalid_input');

  const weights = new Map<string, Weight>();
  for (const t of graph.initializer) weights.set(t.name ?? '', { name: t.name ?? '', kind: 'initializer', tensor: t });
  for (const s of graph.sparseInitializer) {
    const name = s.values?.name ?? '';
    weights.set(name, { name, kind: 'sparse', sparse: s });
  }
  const initializerInputs = new Map<string, onnx.IValueInfoProto>();
  const inputs: onnx.IValueInfoProto[] = [];
  for (const v of graph.input) {
    if (weights.has(v.name ?? '')) initializerInputs.set(v.name ?? '', v);
    else inputs.push(v);
  }

  const all = graph.node.map(toGraphNode);
  const available = new Set<string>([...inputs.map((v) => v.name!), ...weights.keys()]);
  const order = topologicalOrder(all, available);
  order.forEach((n, i) => { n.rank = i; });

  // A node is a weight when it makes a constant: ONNX Runtime would fold it, and copying it is cheaper than cutting around it.
  const compute: GraphNode[] = [];
  for (const n of order) {
    const p = n.proto;
    const isConstant = p.opType === 'Constant' && isStandardDomain(p.domain);
    const foldable = isStandardDomain(p.domain) && !NONDETERMINISTIC.has(p.opType ?? '')
      && subgraphs(p).length === 0 && n.consumes.length > 0 && n.consumes.every((i) => weights.has(i));
    if (isConstant || foldable) {
      for (const o of n.produces) weights.set(o, { name: o, kind: 'node', node: n });
    } else {
      compute.push(n);
    }
  }

  // Keep only what feeds a graph output, walking back from the outputs.
  const producerAll = new Map<string, GraphNode>();
  for (const n of order) for (const o of n.produces) producerAll.set(o, n);
  const live = new Set<GraphNode>();
  const stack = graph.output.map((o) => o.name!);
  while (stack.length > 0) {
    const t = stack.pop()!;
    const n = producerAll.get(t);
    if (!n || live.has(n)) continue;
    live.add(n);
    stack.push(...n.consumes);
  }
  const nodes = compute.filter((n) => live.has(n));
  for (const [name, w] of weights) if (w.kind === 'node' && !live.has(w.node)) weights.delete(name);

  const producer = new Map<string, GraphNode>();
  for (const n of nodes) for (const o of n.produces) producer.set(o, n);
  const valueInfo = new Map<string, onnx.IValueInfoProto>();
  for (const v of [...graph.valueInfo, ...graph.input, ...graph.output]) if (v.name) valueInfo.set(v.name, v);

  return {
    model,
    graph,
    inputs,
    outputs: graph.output,
    weights,
    initializerInputs,
    nodes,
    position: new Map(nodes.map((n, i) => [n, i])),
    producer,
    valueInfo,
    prunedNodes: order.length - live.size,
  };
}

/** Every weight needed to compute `names` (a weight node pulls in the weights it reads), nodes in graph order. */
export function weightClosure(g: ModelGraph, names: Iterable<string>): Weight[] {
  const seen = new Map<string, Weight>();
  const nodes = new Set<GraphNode>();
  const stack = [...names];
  while (stack.length > 0) {
    const name = stack.pop()!;
    const w = g.weights.get(name);
    if (!w || seen.has(name)) continue;
    seen.set(name, w);
    if (w.kind === 'node' && !nodes.has(w.node)) {
      nodes.add(w.node);
      stack.push(...w.node.consumes, ...w.node.produces);
    }
  }
  return [...seen.values()];
}
