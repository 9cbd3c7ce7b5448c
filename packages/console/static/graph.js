// A pipeline's DAG as nodes and edges, from the console API's view of its
// manifest: stages read and write named tensors, and an edge runs from the
// producer of a tensor to each stage that reads it.

/**
 * @typedef {{ name: string, datatype: string, shape: number[], derivedFrom?: string }} TensorView
 * @typedef {{ queued: number, inFlight: number, ready: boolean, reason?: string, workers?: number }} StageLive
 * @typedef {{ name: string, kind: 'onnx' | 'function', fanout: boolean, inputs: Record<string, string>,
 *   outputs: Record<string, string>, when?: { tensor: string, otherwise: Record<string, string> },
 *   batch: { maxSize: number, maxDelayMs: number, maxQueue: number },
 *   scale: { instances: number, threads: number, memoryMb: number },
 *   runsWith?: { stage: string, after: boolean }, live: StageLive }} StageView
 * @typedef {{ name: string, version: string, description?: string, ready: boolean, reason?: string,
 *   inputs: TensorView[], outputs: TensorView[], stages: StageView[], levels: Record<string, number> }} PipelineView
 * @typedef {{ id: string, kind: 'input' | 'stage' | 'output', label: string, stage?: StageView }} GraphNode
 * @typedef {{ from: string, to: string, tensors: string[], kind: 'data' | 'condition' | 'otherwise', level: number }} GraphEdge
 */

/**
 * @param {PipelineView} p
 * @returns {{ nodes: GraphNode[], edges: GraphEdge[] }}
 */
export function pipelineGraph(p) {
  /** @type {GraphNode[]} */
  const nodes = [];
  /** @type {Map<string, string>} tensor -> node id of its producer */
  const producer = new Map();
  for (const t of p.inputs) {
    nodes.push({ id: `in:${t.name}`, kind: 'input', label: t.name });
    producer.set(t.name, `in:${t.name}`);
  }
  for (const st of p.stages) {
    nodes.push({ id: `stage:${st.name}`, kind: 'stage', label: st.name, stage: st });
    for (const t of Object.values(st.outputs)) producer.set(t, `stage:${st.name}`);
  }
  /** @type {Map<string, GraphEdge>} */
  const edges = new Map();
  const add = (from, to, tensor, kind) => {
    if (!from) return;
    const key = `${from}|${to}|${kind}`;
    const e = edges.get(key);
    if (e) { if (!e.tensors.includes(tensor)) e.tensors.push(tensor); }
    else edges.set(key, { from, to, tensors: [tensor], kind, level: p.levels[tensor] ?? 0 });
  };
  for (const st of p.stages) {
    const to = `stage:${st.name}`;
    for (const t of Object.values(st.inputs)) add(producer.get(t), to, t, 'data');
    if (st.when) add(producer.get(st.when.tensor), to, st.when.tensor, 'condition');
  }
  // Items a condition skips take the `otherwise` tensors as the stage's outputs: those reach the
  // stage's consumers around it, drawn dashed.
  for (const st of p.stages) {
    if (!st.when) continue;
    for (const [local, alt] of Object.entries(st.when.otherwise)) {
      const out = st.outputs[local];
      for (const c of p.stages) {
        if (Object.values(c.inputs).includes(out)) add(producer.get(alt), `stage:${c.name}`, alt, 'otherwise');
      }
      if (p.outputs.some((o) => o.name === out)) add(producer.get(alt), `out:${out}`, alt, 'otherwise');
    }
  }
  for (const t of p.outputs) {
    nodes.push({ id: `out:${t.name}`, kind: 'output', label: t.name });
    add(producer.get(t.derivedFrom ?? t.name), `out:${t.name}`, t.derivedFrom ? t.name : t.name, 'data');
  }
  return { nodes, edges: [...edges.values()] };
}

/**
 * The stages each stage waits on: the producers of what it reads (data,
 * condition and `otherwise` tensors alike).
 * @param {PipelineView} p
 * @returns {Map<string, string[]>}
 */
export function stagePredecessors(p) {
  const { edges } = pipelineGraph(p);
  /** @type {Map<string, string[]>} */
  const out = new Map(p.stages.map((st) => [st.name, []]));
  for (const e of edges) {
    if (!e.from.startsWith('stage:') || !e.to.startsWith('stage:')) continue;
    const list = out.get(e.to.slice(6));
    if (list && !list.includes(e.from.slice(6))) list.push(e.from.slice(6));
  }
  return out;
}

/**
 * Longest-path layers: a node sits one below the deepest node it reads from.
 * @param {GraphNode[]} nodes @param {GraphEdge[]} edges
 * @returns {Map<string, number>}
 */
export function layers(nodes, edges) {
  /** @type {Map<string, number>} */
  const layer = new Map(nodes.map((n) => [n.id, 0]));
  // Nodes come in topological order (inputs, stages in manifest order, outputs): one pass settles them.
  for (const n of nodes) {
    for (const e of edges) if (e.to === n.id) layer.set(n.id, Math.max(layer.get(n.id) ?? 0, (layer.get(e.from) ?? 0) + 1));
  }
  // Outputs all on the last row: they are what the response holds.
  const last = Math.max(0, ...[...layer.values()]);
  for (const n of nodes) if (n.kind === 'output') layer.set(n.id, last);
  return layer;
}

/**
 * Where a function stage runs, as the views say it: beside the ONNX stage
 * the transport puts it with (its worker process or its Lambda function), or
 * in the gateway.
 * @param {StageView} st @returns {string}
 */
export function functionPlace(st) {
  if (!st.runsWith) return 'in the gateway';
  return `with ${st.runsWith.stage}, ${st.runsWith.after ? 'after' : 'before'} it`;
}
