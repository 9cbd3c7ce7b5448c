import type { FunctionStage, Manifest, OnnxStage, StageSpec } from '../manifest/types.js';
import { bytesPerElement } from '../tensor/datatypes.js';
import { stageLineage } from '../manifest/dag.js';

/**
 * Where each stage of a pipeline runs on Lambda. Every ONNX stage is its own
 * function; a function stage runs in the gateway, unless it is co-located
 * with the ONNX stage it feeds because that shrinks what crosses the function
 * boundary (a pre-processing stage that turns an encoded image into an
 * 11 MB float tensor belongs next to the model that reads the tensor), or,
 * where the manifest asks, with the ONNX stage whose outputs it reads (a
 * post-processing stage that turns a probability map into a few boxes).
 *
 * `moved`: the stage runs only in the stage function; those of its outputs
 * a gateway stage (or the response) reads come back with the ONNX stage's.
 * `both`: the stage runs in the stage function for the group's sake and in
 * the gateway for its other readers (decoding an image is cheaper twice
 * than its pixels are to send).
 */
export type PlacementMode = 'moved' | 'both';

export interface ColocatedStage {
  stage: string;
  mode: PlacementMode;
  /** Runs after session.run, on the ONNX stage's outputs (always `moved`); absent for the stages that run before it. */
  after?: true;
}

/** One ONNX stage's function and the function stages that run in it, in run order. */
export interface StageGroup {
  onnx: string;
  /** Function stages run in the stage function in this order: those before session.run, producers first, then those after it. */
  colocated: ColocatedStage[];
  /** Tensors the gateway sends the function (by pipeline name): what the group reads and does not produce. */
  inputs: string[];
  /** Tensors of moved stages the function sends back besides the ONNX stage's outputs (a gateway stage or the response reads them). */
  returns: string[];
  /**
   * The ONNX stage's outputs (pipeline names) that do not come back: only
   * stages run after it in the function read them. Absent when all come back.
   */
  kept?: string[];
}

export interface Placement {
  /** One per ONNX stage, in manifest order. */
  groups: StageGroup[];
}

/**
 * Bytes of one item of a tensor as a polynomial in the size of its free
 * dimensions: coefficient per degree (degree = free dims past the item dim,
 * plus one for the unknown length of a BYTES element). Undefined: the
 * tensor's type is not declared (an ONNX stage's output).
 */
type Size = Map<number, number>;

/**
 * The rule, for each ONNX stage O in turn: start with O alone; what crosses
 * its boundary is O's inputs (O's outputs cross in any case and are left
 * out). Then, while some function stage F produces a tensor the group reads,
 * try F in the group, moved or in both places, and keep the choice that
 * crosses least, if it crosses less than without F. A move is preferred to
 * running in both places unless the latter's leading term is smaller (no
 * work done twice to save a few bytes). Sizes come from the declared dtypes and shapes: a free
 * dimension is an unknown D, so [-1,-1,3] UINT8 is 3·D² bytes and
 * [3,48,-1] FP32 576·D; polynomials compare by their highest power of D, then
 * its coefficient, then the next power.
 *
 * A stage's `placement` overrides the sizes: `with_model` joins O's group
 * when it qualifies (its author knows that a "free" line height is about 40
 * pixels, which the rule cannot), `gateway` never joins. `unplaced` lists the
 * `with_model` stages that did not qualify, for the plan to refuse.
 *
 * F qualifies when it is not a fan-out, has no `when` condition, runs at O's
 * lineage, has no per-request inputs or non-zero batch axes, belongs to no
 * other group, and none of its outputs feeds another ONNX stage; every
 * tensor it would make cross must have a declared type. Function stages are
 * taken to be pure (the same item in gives the same item out), which running
 * one in both places relies on.
 *
 * Then, after session.run: a function stage marked `with_model` that reads
 * an output of O (or of a stage already placed after it) and nothing the
 * group neither makes nor receives joins it, moved, when it qualifies as
 * above and none of its outputs feeds an ONNX stage (such a stage belongs
 * with the model it feeds). An O with a `when` takes no stage, before or
 * after: for an item it skips, what they make would never be made (the
 * condition itself, or what the gateway reads). An ONNX stage's outputs
 * have no declared type, so the sizes cannot say whether the answer shrinks:
 * this step is the author's call. O's outputs that only such stages read
 * stay in the function (`kept`).
 */
export interface PlacementOptions {
  /**
   * Whether a stage may run in both places (default true). Lambda's
   * functions are remote, so decoding an image twice beats sending its
   * pixels; a worker process is on the same machine, where sending bytes
   * costs less CPU than doing a stage's work again, and only moves count.
   */
  duplicate?: boolean;
  /** The ONNX stages that take function stages at all (default: every one); the others get a group of their own alone. */
  takes?: (o: OnnxStage) => boolean;
}

export function placeStages(m: Manifest, opts: PlacementOptions = {}): Placement {
  const duplicate = opts.duplicate ?? true;
  const byName = new Map(m.stages.map((s) => [s.name, s]));
  const producer = new Map<string, StageSpec>();
  for (const s of m.stages) for (const t of Object.values(s.outputs)) producer.set(t, s);
  const readers = new Map<string, StageSpec[]>();
  for (const s of m.stages) {
    for (const t of stageReads(s)) (readers.get(t) ?? readers.set(t, []).get(t)!).push(s);
  }
  const pipelineOutputs = new Set(m.outputs.map((o) => o.derived?.of ?? o.name));
  const claimed = new Set<string>();
  const order = new Map(m.order.map((n, i) => [n, i]));

  const groups: StageGroup[] = [];
  for (const o of m.stages) {
    if (o.kind !== 'onnx') continue;
    const lineage = stageLineage(m, o).join('/');
    let members: ColocatedStage[] = [];
    let current = crossing(m, o, members, byName, producer, readers, pipelineOutputs);
    // A `when` may skip the ONNX stage for an item: what a stage moved before it makes (the condition itself,
    // or a tensor read in the gateway) would then never be made. Such a stage takes none.
    if (o.when || (opts.takes && !opts.takes(o))) {
      groups.push({ onnx: o.name, colocated: [], inputs: current.inputs, returns: current.returns });
      continue;
    }
    for (;;) {
      let best: { members: ColocatedStage[]; size: Size } | undefined;
      const inside = new Set([o.name, ...members.map((c) => c.stage)]);
      const candidates = new Set<FunctionStage>();
      // An input of no declared size cannot be weighed: nothing joins by the sizes then.
      for (const t of current.size ? current.inputs : []) {
        const p = producer.get(t);
        if (p && p.kind === 'function' && !inside.has(p.name) && !claimed.has(p.name)) candidates.add(p);
      }
      let forced: { members: ColocatedStage[]; size: Size } | undefined;
      for (const f of candidates) {
        if (f.placement === 'gateway' || !eligible(m, f, lineage, readers)) continue;
        const option = (mode: PlacementMode) => {
          const next = [...members, { stage: f.name, mode }];
          const c = crossing(m, o, next, byName, producer, readers, pipelineOutputs);
          return c.size && { members: next, size: c.size };
        };
        const moved = option('moved');
        const both = duplicate ? option('both') : undefined;
        // Running in both places must beat a move in the leading term, not only below it: no work done twice for a few bytes.
        const pick = moved && (!both || compare(leading(moved.size), leading(both.size)) <= 0) ? moved : both;
        if (pick && f.placement === 'with_model') forced ??= pick;
        if (pick && (!best || compare(pick.size, best.size) < 0)) best = pick;
      }
      // The author's `placement: with_model` joins whatever the sizes say; otherwise only a smaller crossing does.
      if (forced) best = forced;
      else if (!best || !current.size || compare(best.size, current.size) >= 0) break;
      members = best!.members;
      current = crossing(m, o, members, byName, producer, readers, pipelineOutputs);
    }
    members.sort((a, b) => order.get(a.stage)! - order.get(b.stage)!);
    for (const c of members) claimed.add(c.stage);
    // Then the stages after the model (an ONNX stage with a `when` took none above: the gateway would have to run
    // them on the items it skips).
    for (;;) {
      const inside = new Set([o.name, ...members.map((c) => c.stage)]);
      const made = new Set([...inside].flatMap((n) => Object.values(byName.get(n)!.outputs)));
      // What the model, or a stage already placed after it, makes: a stage reading one of these comes after the
      // model in the DAG, so nothing it makes can be one of the group's inputs (no cycle through the gateway).
      const downstream = new Set([o.name, ...members.filter((c) => c.after).map((c) => c.stage)]
        .flatMap((n) => Object.values(byName.get(n)!.outputs)));
      const received = new Set(current.inputs);
      const next = m.order.map((n) => byName.get(n)).find((f): f is FunctionStage => f?.kind === 'function'
        && f.placement === 'with_model' && !claimed.has(f.name)
        && eligible(m, f, lineage, readers)
        && Object.values(f.outputs).every((t) => !(readers.get(t) ?? []).some((r) => r.kind === 'onnx'))
        && stageReads(f).some((t) => downstream.has(t))
        && stageReads(f).every((t) => made.has(t) || received.has(t)));
      if (!next) break;
      members.push({ stage: next.name, mode: 'moved', after: true });
      claimed.add(next.name);
      current = crossing(m, o, members, byName, producer, readers, pipelineOutputs);
    }
    const group: StageGroup = { onnx: o.name, colocated: members, inputs: current.inputs, returns: current.returns };
    if (current.kept.length) group.kept = current.kept;
    groups.push(group);
  }
  return { groups };
}

/** Function stages marked `placement: with_model` that no ONNX stage's function took. */
export function unplaced(m: Manifest, p: Placement): FunctionStage[] {
  const placed = new Set(p.groups.flatMap((g) => g.colocated.map((c) => c.stage)));
  return m.stages.filter((s): s is FunctionStage => s.kind === 'function' && s.placement === 'with_model' && !placed.has(s.name));
}

/** The group of an ONNX stage, or undefined for a stage that is not an ONNX stage of this placement. */
export function groupOf(p: Placement, stage: string): StageGroup | undefined {
  return p.groups.find((g) => g.onnx === stage);
}

/**
 * The manifest as the gateway's executor walks it on Lambda: moved function
 * stages left out, and each ONNX stage with co-located stages reading the
 * group's inputs and writing, besides those of its own outputs that come
 * back, the tensors the group returns (both by their pipeline names). Its
 * timeout covers the whole group.
 * Unchanged (the same object) when nothing is co-located.
 */
export function gatewayView(m: Manifest, p: Placement = placeStages(m)): Manifest {
  const grouped = p.groups.filter((g) => g.colocated.length > 0);
  if (grouped.length === 0) return m;
  const moved = new Set(grouped.flatMap((g) => g.colocated.filter((c) => c.mode === 'moved').map((c) => c.stage)));
  const byName = new Map(m.stages.map((s) => [s.name, s]));
  const stages: StageSpec[] = [];
  for (const s of m.stages) {
    if (moved.has(s.name)) continue;
    const g = grouped.find((x) => x.onnx === s.name);
    if (!g || s.kind !== 'onnx') { stages.push(s); continue; }
    const timeoutMs = s.timeoutMs + g.colocated.reduce((n, c) => n + byName.get(c.stage)!.timeoutMs, 0);
    const kept = new Set(g.kept);
    const own = Object.entries(s.outputs).filter(([, t]) => !kept.has(t));
    const view: OnnxStage = {
      ...s,
      inputs: Object.fromEntries(g.inputs.map((t) => [t, t])),
      outputs: { ...Object.fromEntries(own), ...Object.fromEntries(g.returns.map((t) => [t, t])) },
      timeoutMs,
    };
    // The view's inputs go by pipeline name, and so must the inputs whose value a batch's items have to share.
    if (s.perRequest) view.perRequest = s.perRequest.map((local) => s.inputs[local]);
    // The function pre-processes each item and runs the session once per shape that makes (placement/colocated.ts):
    // when that is one shape whatever came in, a page's line crops, all of different sizes, share one Invoke.
    if (oneShapeFromPreprocessing(m, s, g, byName)) view.anyShapes = true;
    stages.push(view);
  }
  return { ...m, stages, order: m.order.filter((n) => !moved.has(n)) };
}

/**
 * Whether every input of the model is made by a stage before it in the group,
 * with a declared per-item shape that is fixed but for the model's pad axis:
 * then items of any shapes still make one session run in the function. An
 * input the gateway sends, a per-request one, or one whose shape may vary
 * says no (several session runs, one after another, where separate Invokes
 * would have run side by side).
 */
function oneShapeFromPreprocessing(m: Manifest, o: OnnxStage, g: StageGroup, byName: Map<string, StageSpec>): boolean {
  if (o.perRequest?.length) return false;
  const made = new Set(g.colocated.filter((c) => !c.after).flatMap((c) => Object.values(byName.get(c.stage)!.outputs)));
  const pad = o.batch.padAxis;
  return Object.values(o.inputs).every((t) => {
    const spec = m.tensors[t];
    if (!made.has(t) || !spec || spec.datatype === 'BYTES' || (spec.batchAxis ?? 0) !== 0) return false;
    return spec.shape.slice(1).every((d, i) => d >= 0 || i === pad);
  });
}

/** One line per stage function listing what runs in it, for `ensemble plan` and the docs. */
export function describePlacement(p: Placement): string[] {
  return p.groups.map((g) => {
    const name = (c: ColocatedStage) => (c.mode === 'both' ? `${c.stage} (also in the gateway)` : c.stage);
    const runs = [...g.colocated.filter((c) => !c.after).map(name), g.onnx, ...g.colocated.filter((c) => c.after).map(name)];
    const back = g.returns.length ? `; returns ${g.returns.join(', ')} besides its outputs` : '';
    const kept = g.kept?.length ? `; keeps ${g.kept.join(', ')} (only the stages after ${g.onnx} read it)` : '';
    return `${g.onnx}: ${runs.join(' -> ')}; receives ${g.inputs.join(', ')}${back}${kept}`;
  });
}

function stageReads(s: StageSpec): string[] {
  return [...Object.values(s.inputs), ...(s.when ? [s.when.tensor, ...Object.values(s.when.otherwise)] : [])];
}

function eligible(m: Manifest, f: FunctionStage, lineage: string, readers: Map<string, StageSpec[]>): boolean {
  if (f.fanout || f.when || f.perRequest?.length || f.inputAxes || f.outputAxes) return false;
  if (stageLineage(m, f).join('/') !== lineage) return false;
  for (const t of Object.values(f.outputs)) {
    if ((readers.get(t) ?? []).filter((r) => r.kind === 'onnx').length > 1) return false;
  }
  return true;
}

/**
 * What crosses the boundary of O's function with `members` in it: the
 * tensors the group reads and does not make, and those its moved stages make
 * for a reader outside (a gateway stage, a stage run in both places, the
 * response), and the ONNX stage's outputs that stay in the function. No
 * size when one of the crossing tensors has no declared type.
 */
function crossing(
  m: Manifest, o: OnnxStage, members: ColocatedStage[], byName: Map<string, StageSpec>,
  producer: Map<string, StageSpec>, readers: Map<string, StageSpec[]>, pipelineOutputs: Set<string>,
): { inputs: string[]; returns: string[]; kept: string[]; size?: Size } {
  const group = [o, ...members.map((c) => byName.get(c.stage)!)];
  const inGroup = new Set(group.map((s) => s.name));
  const runsOnlyThere = new Set([o.name, ...members.filter((c) => c.mode === 'moved').map((c) => c.stage)]);
  const inputs: string[] = [];
  for (const s of group) {
    for (const t of Object.values(s.inputs)) {
      const p = producer.get(t);
      if ((!p || !inGroup.has(p.name)) && !inputs.includes(t)) inputs.push(t);
    }
  }
  const returns: string[] = [];
  for (const c of members) {
    if (c.mode !== 'moved') continue;
    for (const t of Object.values(byName.get(c.stage)!.outputs)) {
      const outside = (readers.get(t) ?? []).some((r) => !runsOnlyThere.has(r.name)) || pipelineOutputs.has(t);
      if (outside && !returns.includes(t)) returns.push(t);
    }
  }
  // The ONNX stage's own outputs come back unless only stages run after it, in the function, read them.
  const after = new Set(members.filter((c) => c.after).map((c) => c.stage));
  const kept = after.size === 0 ? [] : Object.values(o.outputs).filter((t) => !pipelineOutputs.has(t)
    && (readers.get(t) ?? []).some((r) => after.has(r.name))
    && (readers.get(t) ?? []).every((r) => after.has(r.name)));
  const size: Size = new Map();
  for (const t of [...inputs, ...returns]) {
    const s = tensorSize(m, t);
    if (!s) return { inputs, returns, kept };
    for (const [d, c] of s) size.set(d, (size.get(d) ?? 0) + c);
  }
  return { inputs, returns, kept, size };
}

function tensorSize(m: Manifest, tensor: string): Size | undefined {
  const spec = m.tensors[tensor];
  if (!spec) return undefined;
  const axis = spec.batchAxis ?? 0;
  let degree = 0;
  let coefficient = bytesPerElement(spec.datatype) ?? 1;
  if (spec.datatype === 'BYTES') degree++;
  spec.shape.forEach((d, i) => {
    if (i === axis && !spec.perRequest) return;
    if (d < 0) degree++;
    else coefficient *= d;
  });
  return new Map([[degree, coefficient]]);
}

/** Sign of a - b for large D: the highest power first, then the next. */
function compare(a: Size, b: Size): number {
  const degrees = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => y - x);
  for (const d of degrees) {
    const x = a.get(d) ?? 0;
    const y = b.get(d) ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function leading(a: Size): Size {
  const top = Math.max(...a.keys());
  return new Map([[top, a.get(top)!]]);
}
