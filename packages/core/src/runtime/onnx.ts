import * as ort from 'onnxruntime-node';
import type { OnnxStage } from '../manifest/types.js';
import type { Item, NumericData, Tensor } from '../tensor/types.js';
import type { BatchResult, ColdStartSplit, StageRuntime } from './types.js';
import { moveBatchAxis, splitAlong, stackAlong, stackRows } from '../tensor/rows.js';
import { fromOrt, toOrt } from './ort-tensors.js';
import { EnsembleError, StageError } from '../errors.js';
import { elementCount } from '../tensor/datatypes.js';

export interface OnnxRuntimeOptions {
  stage: OnnxStage;
  /** Local file of the verified weights. */
  modelPath: string;
  /** How resolving the weights went, for the cold start's split (its fetchMs and hashMs). */
  weights?: { fetchMs: number; hashMs: number };
  /** performance.now() when loading began (before the weights): initMs counts from there, not from the session alone. */
  loadStartedAt?: number;
}

/** A batch's outputs whole, by model output name, with what the session's call reports. */
export interface BatchOutputs {
  outputs: Record<string, Tensor>;
  computeMs: number;
  coldStart: boolean;
  initMs?: number;
  coldStartSplit?: ColdStartSplit;
}

export interface OnnxRuntime extends StageRuntime {
  /**
   * session.run on feeds already stacked (StageBatching.stack) for a batch of
   * `n` items: the outputs whole, each checked to have n rows along its batch
   * axis, for the caller to split (a worker sends them as they are).
   */
  runBatch(feeds: Record<string, Tensor>, n: number): Promise<BatchOutputs>;
}

/**
 * One input of a batch as the transport has it: the items' tensors, and, when
 * they arrived back to back with one shape (a worker reading a frame), the
 * batch tensor [n, ...shape] they already form.
 */
export interface BatchInput {
  parts: Tensor[];
  stacked?: Tensor;
}

/** How a stage's batches are stacked and split: the same in a worker, in the gateway and in-process. */
export interface StageBatching {
  /**
   * The feeds of one batch by model input name: the batch tensor an input
   * already forms when it can be fed as is, else one copy (padding, items
   * that came apart, another batch axis). A per-request input is its first part.
   */
  stack(inputs: Record<string, BatchInput | undefined>): Record<string, Tensor>;
  /** Throws unless every output is there with `n` rows along its batch axis. */
  check(outputs: Record<string, Tensor | undefined>, n: number): void;
  /** Each item's outputs: views of the batch outputs along dim 0 (no copy), copies along another batch axis. */
  split(outputs: Record<string, Tensor>, n: number): Item[];
}

/**
 * The session's options from the stage's scale and session settings. With
 * more than one intra-op thread, the pool's threads block between parallel
 * sections instead of spinning (ONNX Runtime's default): a lone run still
 * spreads over idle cores, while under load a spinning pool would burn the
 * cores the other stages' workers need. The run's own thread takes part in
 * every parallel loop, so a pool thread that is not scheduled leaves its
 * share to it.
 */
export function sessionOptions(stage: Pick<OnnxStage, 'scale' | 'session'>): ort.InferenceSession.SessionOptions {
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: stage.scale.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: stage.session.graphOptimization,
    executionMode: 'sequential',
  };
  // onnxruntime-node passes `extra` as session config entries (string values only).
  if (stage.scale.threads > 1) options.extra = { 'session.intra_op.allow_spinning': '0' };
  return options;
}

/**
 * One ONNX Runtime session for one stage. Items (keyed by model input name)
 * are stacked into a batch along a new dim 0, padded along the stage's pad
 * axis when their shapes differ, and the outputs split back per item.
 * Inputs and outputs with another batch axis stack and split along it; a
 * per-request input is fed whole (the batcher only batches items that agree
 * on it).
 */
export async function createOnnxRuntime({ stage, modelPath, weights, loadStartedAt }: OnnxRuntimeOptions): Promise<OnnxRuntime> {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(modelPath, sessionOptions(stage));
  const sessionMs = performance.now() - t0;
  const initMs = performance.now() - (loadStartedAt ?? t0);
  const split: ColdStartSplit = { fetchMs: weights?.fetchMs ?? 0, hashMs: weights?.hashMs ?? 0, sessionMs };
  let cold = true;
  const inputNames = Object.keys(stage.inputs);
  const outputNames = Object.keys(stage.outputs);
  const batching = stageBatching(stage);

  const runBatch = async (feeds: Record<string, Tensor>, n: number): Promise<BatchOutputs> => {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t);
    const start = performance.now();
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await session.run(ortFeeds, outputNames);
    } catch (e) {
      throw new StageError(stage.name, e instanceof Error ? e.message : String(e), 'stage_failed', { byRun: true });
    }
    const computeMs = performance.now() - start;
    const outputs: Record<string, Tensor> = {};
    for (const name of outputNames) outputs[name] = fromOrt(results[name] as ort.Tensor, `stage '${stage.name}' output '${name}'`);
    batching.check(outputs, n);
    const coldStart = cold;
    cold = false;
    const out: BatchOutputs = { outputs, computeMs, coldStart, initMs: coldStart ? initMs : undefined };
    if (coldStart) out.coldStartSplit = split;
    return out;
  };

  return {
    runBatch,
    async run(items: Item[]): Promise<BatchResult> {
      const inputs: Record<string, BatchInput> = {};
      for (const name of inputNames) {
        const parts = items.map((it) => it[name]);
        if (parts.some((p) => p === undefined)) throw new StageError(stage.name, `input '${name}' missing from an item`);
        inputs[name] = { parts };
      }
      const { outputs, ...rest } = await runBatch(batching.stack(inputs), items.length);
      const rows = batching.split(outputs, items.length);
      return { outcomes: rows.map((row) => ({ ok: true as const, items: [row] })), ...rest };
    },
    async close() { await session.release(); },
  };
}

/** Whether a tensor's data holds exactly its shape's elements (else stackRows says what is wrong). */
function wholeTensor(t: Tensor): boolean {
  return t.data.length === elementCount(t.shape);
}

export function stageBatching(stage: OnnxStage): StageBatching {
  const inputNames = Object.keys(stage.inputs);
  const outputNames = Object.keys(stage.outputs);
  const perRequest = new Set(stage.perRequest ?? []);
  const inputAxes = stage.inputAxes ?? {};
  const outputAxes = stage.outputAxes ?? {};
  const pad = { padAxis: stage.batch.padAxis, padValue: stage.batch.padValue };
  return {
    stack(inputs) {
      const feeds: Record<string, Tensor> = {};
      for (const name of inputNames) {
        const input = inputs[name];
        if (!input || input.parts.length === 0) throw new StageError(stage.name, `input '${name}' missing from an item`);
        const axis = inputAxes[name];
        if (perRequest.has(name)) feeds[name] = input.parts[0];
        else if (input.stacked) feeds[name] = axis === undefined ? input.stacked : moveBatchAxis(input.stacked, axis);
        else if (axis === undefined && input.parts.length === 1 && wholeTensor(input.parts[0])) {
          // One item is already the batch: its data as it is, no copy (a page's 11 MB detector input).
          const t = input.parts[0];
          feeds[name] = { datatype: t.datatype, shape: [1, ...t.shape], data: t.data };
        } else feeds[name] = axis === undefined ? stackRows(input.parts, pad) : stackAlong(input.parts, axis, pad);
      }
      return feeds;
    },
    check(outputs, n) {
      for (const name of outputNames) {
        const out = outputs[name];
        if (!out) throw new StageError(stage.name, `output '${name}' missing`);
        const axis = outputAxes[name];
        if (axis !== undefined && axis >= out.shape.length) {
          throw new StageError(stage.name, `output '${name}' has shape [${out.shape.join(', ')}]: no batch axis ${axis}`);
        }
        const rows = out.shape[axis ?? 0];
        if (rows !== n) throw new StageError(stage.name, `output '${name}' has ${rows ?? 0} rows for a batch of ${n}`);
      }
    },
    split(outputs, n) {
      const perOutput: Record<string, Tensor[]> = {};
      for (const name of outputNames) {
        const axis = outputAxes[name];
        perOutput[name] = axis === undefined ? rowViews(outputs[name]) : splitAlong(outputs[name], axis);
      }
      return Array.from({ length: n }, (_, i) => Object.fromEntries(outputNames.map((name) => [name, perOutput[name][i]])));
    },
  };
}

/**
 * splitRows without the copies: each row a view of the batch's storage
 * (BYTES: the row's elements, themselves shared). The rows of a batch keep
 * its whole buffer alive while any one of them is.
 */
export function rowViews(t: Tensor): Tensor[] {
  if (t.shape.length === 0) throw new EnsembleError('rowViews: a scalar (shape []) has no rows');
  const [n, ...itemShape] = t.shape;
  const per = elementCount(itemShape);
  if (t.data.length !== n * per) throw new EnsembleError(`rowViews: shape [${t.shape.join(', ')}] needs ${n * per} elements but data has ${t.data.length}`);
  const out: Tensor[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const data = Array.isArray(t.data)
      ? t.data.slice(i * per, (i + 1) * per)
      : ((t.data as Uint8Array).subarray(i * per, (i + 1) * per) as unknown as NumericData);
    out[i] = { datatype: t.datatype, shape: itemShape.slice(), data };
  }
  return out;
}
