import type { Manifest, StageSpec, TensorSpec } from '../manifest/types.js';
import type { Datatype } from '../tensor/types.js';
import { stageModelName } from '../observability/statistics.js';

/**
 * Triton's model configuration extension: a pipeline's and a stage's
 * configuration in the JSON Triton's server renders from model_config.proto
 * (field names as in the proto, every int64 a JSON number, as Triton's
 * ModelConfigToJson fixes them). A pipeline is an `ensemble` whose steps are
 * its stages; each stage is a model of its own named `{pipeline}.{stage}`.
 *
 * The batch dimension (docs/api.md, "Model configuration"): a pipeline whose
 * inputs and outputs all count items on dim 0, and whose inputs have dims
 * of their own besides, has `max_batch_size` = `max_items` and dims without
 * dim 0, so a client that adds the batch dim itself (perf_analyzer, with
 * `-b N` sending N rows) builds valid requests; any other pipeline has
 * `max_batch_size` 0 and its full shapes. Stages alike, with the stage's
 * `batch.max_size`.
 */

export interface ModelTensorConfig {
  name: string;
  data_type: string;
  dims: number[];
  reshape?: { shape: number[] };
}

export interface ModelConfig {
  name: string;
  platform: string;
  backend: string;
  version_policy: { latest: { num_versions: number } };
  max_batch_size: number;
  input: (ModelTensorConfig & { format: 'FORMAT_NONE'; is_shape_tensor: false; allow_ragged_batch: false; optional: false })[];
  output: (ModelTensorConfig & { label_filename: ''; is_shape_tensor: false })[];
  instance_group: { name: string; kind: 'KIND_CPU'; count: number; gpus: number[]; profile: string[]; passive: false; host_policy: '' }[];
  ensemble_scheduling?: { step: EnsembleStep[] };
  dynamic_batching?: {
    preferred_batch_size: number[];
    max_queue_delay_microseconds: number;
    preserve_ordering: false;
    priority_levels: number;
    default_priority_level: number;
    default_queue_policy: { timeout_action: 'REJECT'; default_timeout_microseconds: number; allow_timeout_override: boolean; max_queue_size: number };
  };
  parameters: Record<string, { string_value: string }>;
}

export interface EnsembleStep {
  model_name: string;
  model_version: number;
  /** The step model's input name -> the ensemble tensor it reads. */
  input_map: Record<string, string>;
  /** The step model's output name -> the ensemble tensor it writes. */
  output_map: Record<string, string>;
}

/** A tensor as a model shows it: OIP name, datatype and shape (batch dim -1 included). */
export interface ModelTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
}

/** Platform and backend names: ONNX stages as Triton's onnxruntime backend names itself; function stages by their kind. */
export const STAGE_PLATFORM = { onnx: { platform: 'onnxruntime_onnx', backend: 'onnxruntime' }, function: { platform: 'function', backend: 'function' } } as const;

/** Triton's DataType enum name for an OIP datatype (BYTES is TYPE_STRING). */
export function configDatatype(dt: Datatype): string {
  return dt === 'BYTES' ? 'TYPE_STRING' : `TYPE_${dt}`;
}

/**
 * Whether the item dim can be Triton's batch dim: every tensor counts its
 * items on dim 0, and every input has dims of its own besides. Triton has no
 * input without dims (its config writes [1] reshaped to []), and
 * perf_analyzer refuses to build one: an input of one value per item (OCR's
 * encoded image, [-1]) keeps the item dim as a dim of its own, -1, which the
 * client sets (`--shape image:1`, or `shape` in its input data).
 */
function batchMajor(inputs: readonly BatchedSpec[], outputs: readonly BatchedSpec[]): boolean {
  return [...inputs, ...outputs].every((s) => !s.perRequest && (s.batchAxis ?? 0) === 0)
    && inputs.every((s) => s.shape.length > 1);
}

type BatchedSpec = Pick<TensorSpec, 'perRequest' | 'batchAxis' | 'shape'>;

function tensorConfig(t: ModelTensor, batched: boolean): ModelTensorConfig {
  const dims = batched ? t.shape.slice(1) : [...t.shape];
  // Triton refuses empty dims: one value per item is written as Triton users write it, [1] reshaped to [].
  if (dims.length === 0) return { name: t.name, data_type: configDatatype(t.datatype), dims: [1], reshape: { shape: [] } };
  return { name: t.name, data_type: configDatatype(t.datatype), dims };
}

function configOf(base: { name: string; platform: string; backend: string; maxBatchSize: number; inputs: ModelTensor[]; outputs: ModelTensor[] }): ModelConfig {
  const batched = base.maxBatchSize > 0;
  return {
    name: base.name,
    platform: base.platform,
    backend: base.backend,
    version_policy: { latest: { num_versions: 1 } },
    max_batch_size: base.maxBatchSize,
    input: base.inputs.map((t) => ({ ...tensorConfig(t, batched), format: 'FORMAT_NONE', is_shape_tensor: false, allow_ragged_batch: false, optional: false })),
    output: base.outputs.map((t) => ({ ...tensorConfig(t, batched), label_filename: '', is_shape_tensor: false })),
    instance_group: [],
    parameters: {},
  };
}

const tensorOf = ({ name, datatype, shape }: TensorSpec): ModelTensor => ({ name, datatype, shape });

/** The largest batch a client may send a pipeline: `max_items` when the item dim is dim 0 everywhere, else 0 (no batch dim). */
export function pipelineMaxBatchSize(m: Manifest): number {
  return batchMajor(m.inputs, m.outputs) ? m.maxItems : 0;
}

export function pipelineConfig(m: Manifest): ModelConfig {
  const config = configOf({
    name: m.name, platform: 'ensemble', backend: '', maxBatchSize: pipelineMaxBatchSize(m),
    inputs: m.inputs.map(tensorOf), outputs: m.outputs.map(tensorOf),
  });
  const steps = m.order.map((name) => m.stages.find((s) => s.name === name)!);
  config.ensemble_scheduling = {
    step: steps.map((s) => ({
      model_name: stageModelName(m.name, s.name),
      // The version itself, not -1 (latest): a client then finds a step's statistics even when no request reached it.
      model_version: versionNumber(m.version),
      input_map: { ...s.inputs },
      output_map: { ...s.outputs },
    })),
  };
  return config;
}

/**
 * A stage's own inputs and outputs, by its local names, with the types the
 * manifest knows (pipeline tensors, typed function outputs, and ONNX outputs
 * once the server has read the models). A tensor whose type is not known
 * here (an ONNX output on the Lambda gateway, which never opens the models)
 * is left out rather than guessed.
 */
export function stageTensors(m: Manifest, s: StageSpec): { inputs: ModelTensor[]; outputs: ModelTensor[]; maxBatchSize: number } {
  const side = (map: Record<string, string>, axes: Record<string, number> | undefined) => Object.entries(map).flatMap(([local, tensor]) => {
    const spec = m.tensors[tensor];
    if (!spec) return [];
    const perRequest = s.perRequest?.includes(local) ?? false;
    return [{ t: { name: local, datatype: spec.datatype, shape: [...spec.shape] }, shape: spec.shape, perRequest, batchAxis: axes?.[local] ?? spec.batchAxis ?? 0 }];
  });
  const inputs = side(s.inputs, s.inputAxes);
  const outputs = side(s.outputs, s.outputAxes);
  const batched = batchMajor(inputs, outputs);
  return { inputs: inputs.map((i) => i.t), outputs: outputs.map((o) => o.t), maxBatchSize: batched ? s.batch.maxSize : 0 };
}

export function stageConfig(m: Manifest, s: StageSpec): ModelConfig {
  const { inputs, outputs, maxBatchSize } = stageTensors(m, s);
  const config = configOf({ name: stageModelName(m.name, s.name), ...STAGE_PLATFORM[s.kind], maxBatchSize, inputs, outputs });
  config.dynamic_batching = {
    preferred_batch_size: [s.batch.maxSize],
    max_queue_delay_microseconds: Math.round(s.batch.maxDelayMs * 1000),
    preserve_ordering: false,
    priority_levels: 0,
    default_priority_level: 0,
    default_queue_policy: { timeout_action: 'REJECT', default_timeout_microseconds: Math.round(s.batch.queueTimeoutMs * 1000), allow_timeout_override: false, max_queue_size: s.batch.maxQueue },
  };
  config.instance_group = [{ name: s.name, kind: 'KIND_CPU', count: s.scale.instances, gpus: [], profile: [], passive: false, host_policy: '' }];
  config.parameters = { pipeline: { string_value: m.name }, stage: { string_value: s.name }, kind: { string_value: s.kind } };
  return config;
}

/** OIP model metadata of a stage model. */
export function stageMetadata(m: Manifest, s: StageSpec) {
  const { inputs, outputs } = stageTensors(m, s);
  return { name: stageModelName(m.name, s.name), versions: [m.version], platform: STAGE_PLATFORM[s.kind].platform, inputs, outputs };
}

/** Triton's model_version is an int64; a version that is not a number is written as -1 (latest), which resolves to it. */
function versionNumber(version: string): number {
  return /^\d{1,15}$/.test(version) ? Number(version) : -1;
}
