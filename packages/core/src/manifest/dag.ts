import { PIPELINE, stageWhere, type Locator } from './locator.js';
import type { StaticManifest, TypedOutput } from './schema.js';
import { formatShape, shapeMismatch } from './shapes.js';
import { didYouMean } from './suggest.js';
import type { StageSpec, TensorSpec } from './types.js';

/** What the stage graph adds to a manifest: see `Manifest.order`, `levels`, `tensors`. */
export interface Dag {
  order: string[];
  levels: Record<string, number>;
  tensors: Record<string, TensorSpec>;
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
    for (const [local, tensor] of Object.entries(stage.inputs)) {
      if (!producer.has(tensor)) {
        throw loc.error(stageWhere(stage.name), `inputs.${local}`,
          `tensor '${tensor}' is not produced by any stage or pipeline input${didYouMean(tensor, producer.keys(), true)}`);
      }
      consumers.set(tensor, [...(consumers.get(tensor) ?? []), stage.name]);
    }
  }

  m.outputs.forEach((out, i) => {
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
  const levels = lineageLevels(m, order, stages, loc);
  const tensors = staticTensors(m, typedOutputs, loc);
  return { order, levels, tensors };
}

/** Kahn's algorithm, ties broken by manifest order so the result is stable. */
function topologicalOrder(list: readonly StageSpec[], producer: Map<string, string | null>, loc: Locator): string[] {
  const deps = new Map<string, Set<string>>();
  for (const stage of list) {
    const d = new Set<string>();
    for (const tensor of Object.values(stage.inputs)) {
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
  const path: { stage: string; local: string; tensor: string }[] = [];
  let current = left[0];
  const seenAt = new Map<string, number>();
  while (!seenAt.has(current.name)) {
    seenAt.set(current.name, path.length);
    const [local, tensor] = Object.entries(current.inputs).find(([, t]) => leftNames.has(producer.get(t) ?? ''))!;
    path.push({ stage: current.name, local, tensor });
    current = byName.get(producer.get(tensor)!)!;
  }
  const cycle = path.slice(seenAt.get(current.name));
  const head = cycle[0];
  return loc.error(stageWhere(head.stage), `inputs.${head.local}`,
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
function lineageLevels(m: StaticManifest, order: string[], stages: Map<string, StageSpec>, loc: Locator): Record<string, number> {
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
    for (const [local, tensor] of Object.entries(stage.inputs)) {
      const l = lineage.get(tensor)!;
      if (!l.every((f, i) => deepest[i] === f)) {
        throw loc.error(stageWhere(name), `inputs.${local}`,
          `tensor '${tensor}' comes from fan-out ${l.map((f) => `'${f}'`).join(' > ')} but '${deepestTensor}' from ${deepest.map((f) => `'${f}'`).join(' > ')}; a stage can only combine tensors of one lineage`);
      }
    }
    const out = stage.kind === 'function' && stage.fanout ? [...deepest, name] : deepest;
    for (const tensor of Object.values(stage.outputs)) lineage.set(tensor, out);
  }
  const levels: Record<string, number> = {};
  for (const [tensor, l] of lineage) levels[tensor] = l.length;
  return levels;
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
