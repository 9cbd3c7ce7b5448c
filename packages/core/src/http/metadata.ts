import type { Manifest } from '../manifest/types.js';
import type { StageHealth } from '../transport/types.js';

export const SERVER_NAME = 'ensemble';
export const SERVER_VERSION = '0.1.0';

/** `extra`: the extensions this gateway adds (`model_repository` where pipelines can be reloaded). */
export function serverMetadata(extra: readonly string[] = []) {
  return { name: SERVER_NAME, version: SERVER_VERSION, extensions: ['binary_tensor_data', 'model_configuration', 'runs', ...extra] };
}

/** Whether a model serves, and if not why, for its metadata's `parameters`. */
export interface ModelStatus {
  ready: boolean;
  reason?: string;
  stages: StageHealth[];
}

/**
 * OIP model metadata, plus the stage list (an extension field clients may
 * ignore) and, under `parameters`, whether it is ready, why not, and which
 * stages are down (their names, comma-separated: the protocol's parameter
 * values are strings, numbers and booleans); the extension field
 * `stages_down` has each of those stages with its reason and next retry.
 */
export function modelMetadata(m: Manifest, status?: ModelStatus) {
  const parameters: Record<string, string | number | boolean> = {};
  let stagesDown: Record<string, unknown>[] | undefined;
  if (status) {
    parameters.ready = status.ready;
    if (status.reason !== undefined) parameters.reason = status.reason;
    const down = status.stages.filter((h) => !h.ready);
    parameters.stages_down = down.map((h) => h.stage).join(', ');
    stagesDown = down.map((h) => {
      const d: Record<string, unknown> = { stage: h.stage, reason: h.reason ?? 'not ready' };
      if (h.retryInMs !== undefined) d.retry_in_ms = h.retryInMs;
      return d;
    });
  }
  return {
    name: m.name,
    versions: [m.version],
    platform: 'ensemble',
    inputs: m.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    outputs: m.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    stages: m.stages.map((s) => ({ name: s.name, kind: s.kind, inputs: Object.values(s.inputs), outputs: Object.values(s.outputs), max_batch_size: s.batch.maxSize, instances: s.scale.instances })),
    ...(status ? { stages_down: stagesDown, parameters } : {}),
  };
}

/** The metadata of a pipeline whose manifest could not be read: its name, and why it does not serve. */
export function unreadableMetadata(name: string, status: ModelStatus) {
  return {
    name, versions: [], platform: 'ensemble', inputs: [], outputs: [], stages: [], stages_down: [],
    parameters: { ready: false, reason: status.reason ?? 'failed to load', stages_down: '' },
  };
}
