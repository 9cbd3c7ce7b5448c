import { PIPELINE, stageWhere, type Locator } from './locator.js';
import type { StaticManifest, TypedOutput } from './schema.js';
import { formatShape, shapeMismatch } from './shapes.js';
import { didYouMean } from './suggest.js';
import type { Manifest, StageSpec, TensorSpec } from './types.js';

/** What the stage graph adds to a manifest: see `Manifest.order`, `levels`, `tensors`. */
export interface Dag {
  order: string[];
  levels: Record<string, number>;
  lineage: Record<string, string[]>;
  tensors: Record<string, TensorSpec>;
}

/** Tensors a stage reads besides its inputs: its condition and the tensors skipped items take. */
export function conditionTensors(stage: StageSpec): { field: string; tensor: string }[] {
  if (!stage.when) return [];
  return [
    { field: 'when', tensor: stage.when.tensor },
    ...Object.entries(stage.when.otherwise).map(([local, tensor]) => ({ field: `otherwise.${local}`, tensor })),
  ];
}

/** Everything a stage waits for: its inputs, then its condition tensors. */
function reads(stage: StageSpec): { field: string; tensor: string }[] {
  return [...Object.entries(stage.inputs).map(([local, tensor]) => ({ field: `inputs.${local}`, tensor })), ...conditionTensors(stage)];
}

/**
 * The DAG follows from tensor names alone: a stage depends on whoever
 * produces the tensors it reads. Every rule here is one a request would
 * otherwise trip over at run time, far from the YAML line that caused it.
 */
export function buildDag(m: StaticManifest, typedOutputs: readonly TypedOutput[], loc: Locator): Dag {
  const stages = new Map(m.stages.map((s) => [s.name, s]));
  /** Tensor -> producing stage; null for a pipeline input. */
  const producer = new Map<string, string | null>();
  for (const input of m.inputs) producer.set(input.name, null);

  for (const stage of m.stages) {
    for (const [local, tensor] of Object.entries(stage.outputs)) {
      if (producer.has(tensor)) {
        const other = producer.get(tensor);
        const by = other === null ? 'the pipeline input of that name'
          : other === stage.name ? 'another output of this stage' : `stage '${other}'`;
        throw loc.error(stageWhere(stage.name), `outputs.${local}`, `tensor '${tensor}' is already produced by ${by}; a tensor has exactly one producer`);
      }
      producer.set(tensor, stage.name);
    }
  }

  const consumers = new Map<string, string[]>();
  for (const stage of m.stages) {
    for (const { field, tensor } of reads(stage)) {
      if (!producer.has(tensor)) {
        throw loc.error(stageWhere(stage.name), field,
          `tensor '${tensor}' is not produced by any stage or pipeline input${didYouMean(tensor, producer.keys(), true)}`);
      }
      if (field !== 'inputs' && !field.startsWith('inputs.') && producer.get(tensor) === stage.name) {
        throw loc.error(stageWhere(stage.name), field, `tensor '${tensor}' is an output of this same stage; the condition and the skipped items' tensors come from upstream`);
      }
      consumers.set(tensor, [...(consumers.get(tensor) ?? []), stage.name]);
    }
    if (stage.when && stage.kind === 'function' && stage.fanout) {
      throw loc.error(stageWhere(stage.name), 'when', 'a fan-out stage cannot be conditional; make the stage before it decide, or return no items from the fan-out');
    }
  }

  m.outputs.forEach((out, i) => {
    if (out.derived) {
      if (producer.has(out.name)) throw loc.error(PIPELINE, `outputs[${i}].name`, `'${out.name}' names the companion of output '${out.derived.of}' but is already a tensor of the pipeline; pick another name`);
      return;
    }
    const p = producer.get(out.name);
    if (p === undefined) {
      throw loc.error(PIPELINE, `outputs[${i}].name`,
        `pipeline output '${out.name}' is not produced by any stage${didYouMean(out.name, producer.keys(), true)}`);
    }
    if (p === null) {
      throw loc.error(PIPELINE, `outputs[${i}].name`, `pipeline output '${out.name}' is a pipeline input; outputs must be produced by a stage`);
    }
  });

  const declared = new Set(m.outputs.map((o) => o.name));
  for (const stage of m.stages) {
    for (const [local, tensor] of Object.entries(stage.outputs)) {
      if (!consumers.has(tensor) && !declared.has(tensor)) {
        throw loc.error(stageWhere(stage.name), `outputs.${local}`,
          `tensor '${tensor}' is never used: nobody consumes it and it is not a pipeline output`);
      }
    }
  }
  m.inputs.forEach((input, i) => {
    if (!consumers.has(input.name)) {
      throw loc.error(PIPELINE, `inputs[${i}].name`, `pipeline input '${input.name}' is never used: nobody consumes it`);
    }
  });

  const order = topologicalOrder(m.stages, producer, loc);
  const lineage = lineages(m, order, stages, loc);
  const levels: Record<string, number> = {};
  for (const [tensor, l] of Object.entries(lineage)) levels[tensor] = l.length;
  const tensors = staticTensors(m, typedOutputs, loc);
  checkConditions(m.stages, tensors, lineage, loc);
  for (const stage of m.stages) markLayout(stage, tensors);
  return { order, levels, lineage, tensors };
}

/**
 * What a stage's runtime needs from the tensors' specs to stack and split a
 * batch, copied onto the stage: it travels with it to a worker process. Left
 * absent for an ordinary stage, so its calls take the plain path.
 */
function markLayout(stage: StageSpec, tensors: Record<string, TensorSpec>): void {
  const perRequest = Object.entries(stage.inputs).filter(([, t]) => tensors[t]?.perRequest).map(([local]) => local);
  if (perRequest.length) stage.perRequest = perRequest;
  const axes = (io: Record<string, string>): Record<string, number> | undefined => {
    const found = Object.entries(io).filter(([, t]) => (tensors[t]?.batchAxis ?? 0) !== 0).map(([local, t]) => [local, tensors[t].batchAxis!]);
    return found.length ? Object.fromEntries(found) : undefined;
  };
  const inputAxes = axes(stage.inputs);
  if (inputAxes) stage.inputAxes = inputAxes;
  const outputAxes = axes(stage.outputs);
  if (outputAxes) stage.outputAxes = outputAxes;
}

/** A condition is one number per item, and a skipped item's tensors have the types the stage would have written. */
function checkConditions(list: readonly StageSpec[], tensors: Record<string, TensorSpec>, lineage: Record<string, string[]>, loc: Locator): void {
  for (const stage of list) {
    if (!stage.when) continue;
    const where = stageWhere(stage.name);
    const cond = tensors[stage.when.tensor];
    if (cond) {
      if (cond.datatype === 'BYTES') throw loc.error(where, 'when', `tensor '${cond.name}' is BYTES; a condition is BOOL or a number (non-zero is true), one per item`);
      if (cond.shape.slice(1).some((d) => d !== 1)) {
        throw loc.error(where, 'when', `tensor '${cond.name}' has shape ${formatShape(cond.shape)}; a condition is one value per item: [-1] or [-1, 1]`);
      }
    }
    const at = lineage[Object.values(stage.outputs)[0]];
    for (const [local, tensor] of Object.entries(stage.when.otherwise)) {
      const from = lineage[tensor];
      if (from.length > at.length || !from.every((f, i) => at[i] === f)) {
        throw loc.error(where, `otherwise.${local}`, `tensor '${tensor}' comes from fan-out ${from.map((f) => `'${f}'`).join(' > ') || '(none)'}, not from the items this stage runs on`);
      }
      const out = tensors[stage.outputs[local]];
      const alt = tensors[tensor];
      if (out && alt) {
        const why = out.datatype !== alt.datatype ? `datatype ${alt.datatype} vs ${out.datatype}` : shapeMismatch(alt.shape, out.shape);
        if (why) {
          throw loc.error(where, `otherwise.${local}`, `tensor '${tensor}' (${alt.datatype} ${formatShape(alt.shape)}) cannot stand in for '${out.name}' (${out.datatype} ${formatShape(out.shape)}): ${why}`);
        }
      }
    }
  }
}

/** Kahn's algorithm, ties broken by manifest order so the result is stable. */
function topologicalOrder(list: readonly StageSpec[], producer: Map<string, string | null>, loc: Locator): string[] {
  const deps = new Map<string, Set<string>>();
  for (const stage of list) {
    const d = new Set<string>();
    for (const { tensor } of reads(stage)) {
      const p = producer.get(tensor);
      if (p) d.add(p);
    }
    deps.set(stage.name, d);
  }
  const order: string[] = [];
  const done = new Set<string>();
  while (order.length < list.length) {
    const next = list.find((s) => !done.has(s.name) && [...deps.get(s.name)!].every((d) => done.has(d)));
    if (!next) throw cycleError(list.filter((s) => !done.has(s.name)), producer, loc);
    order.push(next.name);
    done.add(next.name);
  }
  return order;
}

/**
 * Every stage left over by Kahn's algorithm reads from another leftover one,
 * so walking from consumer to producer must come back to a stage already seen.
 */
function cycleError(left: readonly StageSpec[], producer: Map<string, string | null>, loc: Locator) {
  const leftNames = new Set(left.map((s) => s.name));
  const byName = new Map(left.map((s) => [s.name, s]));
  const path: { stage: string; field: string; tensor: string }[] = [];
  let current = left[0];
  const seenAt = new Map<string, number>();
  while (!seenAt.has(current.name)) {
    seenAt.set(current.name, path.length);
    const { field, tensor } = reads(current).find(({ tensor: t }) => leftNames.has(producer.get(t) ?? ''))!;
    path.push({ stage: current.name, field, tensor });
    current = byName.get(producer.get(tensor)!)!;
  }
  const cycle = path.slice(seenAt.get(current.name));
  const head = cycle[0];
  return loc.error(stageWhere(head.stage), head.field,
    `tensor '${head.tensor}' closes a cycle between stages: ${describeCycle(cycle, producer)}`);
}

function describeCycle(cycle: { stage: string; tensor: string }[], producer: Map<string, string | null>): string {
  // cycle[i] reads cycle[i].tensor from producer(cycle[i].tensor) = cycle[i+1].stage.
  const flow = [...cycle].reverse();
  const start = producer.get(flow[0].tensor)!;
  return [start, ...flow.map((h) => `-(${h.tensor})-> ${h.stage}`)].join(' ');
}

/**
 * Levels follow fan-out: tensors a `fanout: true` stage writes are one level
 * deeper than the items it read. A stage may combine a tensor with tensors of
 * that tensor's ancestors only; two unrelated fan-outs have no item-to-item match.
 */
function lineages(m: StaticManifest, order: string[], stages: Map<string, StageSpec>, loc: Locator): Record<string, string[]> {
  const lineage = new Map<string, string[]>();
  for (const input of m.inputs) lineage.set(input.name, []);
  for (const name of order) {
    const stage = stages.get(name)!;
    let deepest: string[] = [];
    let deepestTensor = '';
    for (const tensor of Object.values(stage.inputs)) {
      const l = lineage.get(tensor)!;
      if (l.length > deepest.length) { deepest = l; deepestTensor = tensor; }
    }
    for (const { field, tensor } of reads(stage)) {
      const l = lineage.get(tensor)!;
      if (l.length > deepest.length && field === 'when') {
        throw loc.error(stageWhere(name), field, `tensor '${tensor}' comes from fan-out ${l.map((f) => `'${f}'`).join(' > ')}, deeper than the items this stage runs on`);
      }
      if (!l.every((f, i) => deepest[i] === f) && !field.startsWith('otherwise.')) {
        throw loc.error(stageWhere(name), field,
          `tensor '${tensor}' comes from fan-out ${l.map((f) => `'${f}'`).join(' > ')} but '${deepestTensor}' from ${deepest.map((f) => `'${f}'`).join(' > ')}; a stage can only combine tensors of one lineage`);
      }
    }
    const out = stage.kind === 'function' && stage.fanout ? [...deepest, name] : deepest;
    for (const tensor of Object.values(stage.outputs)) lineage.set(tensor, out);
  }
  for (const o of m.outputs) if (o.derived) lineage.set(o.name, lineage.get(o.derived.of)!);
  return Object.fromEntries(lineage);
}

function staticTensors(m: StaticManifest, typedOutputs: readonly TypedOutput[], loc: Locator): Record<string, TensorSpec> {
  const tensors: Record<string, TensorSpec> = {};
  for (const spec of [...m.inputs, ...m.outputs]) tensors[spec.name] = spec;
  for (const { stage, local, spec } of typedOutputs) {
    const declared = tensors[spec.name];
    if (declared) {
      const why = declared.datatype !== spec.datatype
        ? `datatype ${spec.datatype} vs ${declared.datatype}`
        : shapeMismatch(spec.shape, declared.shape);
      if (why) {
        throw loc.error(stageWhere(stage), `outputs.${local}`,
          `tensor '${spec.name}' is declared ${spec.datatype} ${formatShape(spec.shape)} here but ${declared.datatype} ${formatShape(declared.shape)} as a pipeline output (${why})`);
      }
      continue;
    }
    tensors[spec.name] = spec;
  }
  return tensors;
}

/** The fan-out lineage a stage runs at: that of its deepest input. */
export function stageLineage(m: Manifest, stage: StageSpec): readonly string[] {
  let deepest: readonly string[] = [];
  for (const t of Object.values(stage.inputs)) {
    const l = m.lineage[t] ?? [];
    if (l.length > deepest.length) deepest = l;
  }
  return deepest;
}
