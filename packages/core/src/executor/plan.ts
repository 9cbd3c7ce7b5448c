import { conditionTensors } from '../manifest/dag.js';
import type { Manifest, StageSpec } from '../manifest/types.js';

/**
 * The stages whose results reach `outputs` (directly, or through a condition
 * or a skipped item's tensor). Stages outside it need not run for a request
 * that asked for these outputs only.
 */
export function stagesFor(m: Manifest, outputs: readonly string[]): Set<string> {
  const producer = new Map<string, StageSpec>();
  for (const s of m.stages) for (const t of Object.values(s.outputs)) producer.set(t, s);
  const derivedOf = new Map(m.outputs.filter((o) => o.derived).map((o) => [o.name, o.derived!.of]));
  const needed = new Set<string>();
  const visit = (tensor: string) => {
    const s = producer.get(derivedOf.get(tensor) ?? tensor);
    if (!s || needed.has(s.name)) return;
    needed.add(s.name);
    for (const t of Object.values(s.inputs)) visit(t);
    for (const { tensor: t } of conditionTensors(s)) visit(t);
  };
  for (const o of outputs) visit(o);
  return needed;
}
