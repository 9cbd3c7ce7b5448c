import type { Manifest, OnnxStage } from '@ensemble/core/manifest/types.js';
import type { Item, Tensor } from '@ensemble/core/tensor/types.js';
import type { BatchResult } from '@ensemble/core/runtime/types.js';
import type { StageTransport } from '@ensemble/core/transport/types.js';
import type { WeightStore } from '@ensemble/core/storage/types.js';
import { Executor } from '@ensemble/core/executor/executor.js';
import { InProcessTransport } from '@ensemble/core/transport/in-process.js';
import { EnsembleError } from '@ensemble/core/errors.js';
import { LocalFileWeightStore } from '../pipelines/local-weights.js';

/**
 * Weights straight from each stage's local `weights.source` (tune and bench run next to the files),
 * checked against the manifest's sha256 as the bucket's copies are.
 */
export function localWeights(manifest: Manifest): WeightStore {
  for (const s of manifest.stages) {
    if (s.kind === 'onnx' && !s.weights.source) throw new EnsembleError(`${manifest.file}: stage '${s.name}': weights.source is needed to profile it locally`);
  }
  return new LocalFileWeightStore(manifest);
}

/** Passes every call through, keeping a copy of what each ONNX stage was given. */
class RecordingTransport implements StageTransport {
  readonly seen = new Map<string, Item[]>();
  constructor(private readonly inner: StageTransport) {}
  get kind(): StageTransport['kind'] { return this.inner.kind; }
  load(m: Manifest): Promise<void> { return this.inner.load(m); }
  concurrency(stage: OnnxStage): number { return this.inner.concurrency(stage); }
  invoke(pipeline: string, stage: string, items: Item[], signal?: AbortSignal): Promise<BatchResult> {
    const list = this.seen.get(stage) ?? [];
    list.push(...items);
    this.seen.set(stage, list);
    return this.inner.invoke(pipeline, stage, items, signal);
  }
  close(): Promise<void> { return this.inner.close(); }
}

/**
 * Runs sample requests through the pipeline (in this process, one session per
 * stage) and returns the items each ONNX stage received: realistic inputs for
 * profiling a stage alone, whatever the function stages before it do.
 */
export async function captureStageInputs(manifest: Manifest, requests: Record<string, Tensor>[], weights: WeightStore = localWeights(manifest)): Promise<Map<string, Item[]>> {
  const m: Manifest = {
    ...manifest,
    stages: manifest.stages.map((s) => ({ ...s, batch: { ...s.batch, maxDelayMs: 0 }, scale: { ...s.scale, instances: 1 } })),
  };
  const transport = new RecordingTransport(new InProcessTransport(weights));
  const ex = await Executor.create(m, transport);
  try {
    for (const r of requests) await ex.run(r);
  } finally {
    await ex.close();
    await transport.close();
  }
  for (const s of manifest.stages) {
    if (s.kind === 'onnx' && !transport.seen.get(s.name)?.length) {
      throw new EnsembleError(`the sample requests never reached stage '${s.name}' (it got no items): give requests that do`);
    }
  }
  return transport.seen;
}

export function onnxStages(m: Manifest): OnnxStage[] {
  return m.stages.filter((s): s is OnnxStage => s.kind === 'onnx');
}

/**
 * For each ONNX stage, the ONNX stages it waits for, looking through function
 * stages (decode -> detect-pre -> detect: detect waits for nothing profiled).
 */
export function onnxDependencies(m: Manifest): Map<string, string[]> {
  const producer = new Map<string, string>();
  for (const s of m.stages) for (const t of Object.values(s.outputs)) producer.set(t, s.name);
  const byName = new Map(m.stages.map((s) => [s.name, s]));
  const memo = new Map<string, Set<string>>();
  const onnxAbove = (stage: string): Set<string> => {
    const hit = memo.get(stage);
    if (hit) return hit;
    const out = new Set<string>();
    memo.set(stage, out);
    for (const t of Object.values(byName.get(stage)!.inputs)) {
      const p = producer.get(t);
      if (!p) continue;
      if (byName.get(p)!.kind === 'onnx') out.add(p);
      else for (const q of onnxAbove(p)) out.add(q);
    }
    return out;
  };
  return new Map(onnxStages(m).map((s) => [s.name, [...onnxAbove(s.name)]]));
}
