import * as ort from 'onnxruntime-node';
import type { OnnxStage } from '../manifest/types.js';
import type { Item, Tensor } from '../tensor/types.js';
import type { BatchResult, ColdStartSplit, StageRuntime } from './types.js';
import { splitAlong, splitRows, stackAlong, stackRows } from '../tensor/rows.js';
import { fromOrt, toOrt } from './ort-tensors.js';
import { StageError } from '../errors.js';

export interface OnnxRuntimeOptions {
  stage: OnnxStage;
  /** Local file of the verified weights. */
  modelPath: string;
  /** How resolving the weights went, for the cold start's split (its fetchMs and hashMs). */
  weights?: { fetchMs: number; hashMs: number };
  /** performance.now() when loading began (before the weights): initMs counts from there, not from the session alone. */
  loadStartedAt?: number;
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
export async function createOnnxRuntime({ stage, modelPath, weights, loadStartedAt }: OnnxRuntimeOptions): Promise<StageRuntime> {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(modelPath, sessionOptions(stage));
  const sessionMs = performance.now() - t0;
  const initMs = performance.now() - (loadStartedAt ?? t0);
  const split: ColdStartSplit = { fetchMs: weights?.fetchMs ?? 0, hashMs: weights?.hashMs ?? 0, sessionMs };
  let cold = true;
  const inputNames = Object.keys(stage.inputs);
  const outputNames = Object.keys(stage.outputs);
  const perRequest = new Set(stage.perRequest ?? []);
  const inputAxes = stage.inputAxes ?? {};
  const outputAxes = stage.outputAxes ?? {};
  const pad = { padAxis: stage.batch.padAxis, padValue: stage.batch.padValue };

  return {
    async run(items: Item[]): Promise<BatchResult> {
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of inputNames) {
        const parts = items.map((it) => it[name]);
        if (parts.some((p) => p === undefined)) throw new StageError(stage.name, `input '${name}' missing from an item`);
        const axis = inputAxes[name];
        const batch = perRequest.has(name) ? parts[0] : axis === undefined ? stackRows(parts, pad) : stackAlong(parts, axis, pad);
        feeds[name] = toOrt(batch);
      }
      const start = performance.now();
      let results: ort.InferenceSession.OnnxValueMapType;
      try {
        results = await session.run(feeds, outputNames);
      } catch (e) {
        throw new StageError(stage.name, e instanceof Error ? e.message : String(e));
      }
      const computeMs = performance.now() - start;
      const perOutput: Record<string, Tensor[]> = {};
      for (const name of outputNames) {
        const out = fromOrt(results[name] as ort.Tensor, `stage '${stage.name}' output '${name}'`);
        const axis = outputAxes[name];
        if (axis !== undefined && axis >= out.shape.length) {
          throw new StageError(stage.name, `output '${name}' has shape [${out.shape.join(', ')}]: no batch axis ${axis}`);
        }
        const rows = axis === undefined ? splitRows(out) : splitAlong(out, axis);
        if (rows.length !== items.length) {
          throw new StageError(stage.name, `output '${name}' has ${rows.length} rows for a batch of ${items.length}`);
        }
        perOutput[name] = rows;
      }
      const coldStart = cold;
      cold = false;
      const result: BatchResult = {
        outcomes: items.map((_, i) => ({ ok: true as const, items: [Object.fromEntries(outputNames.map((n) => [n, perOutput[n][i]]))] })),
        computeMs,
        coldStart,
        initMs: coldStart ? initMs : undefined,
      };
      if (coldStart) result.coldStartSplit = split;
      return result;
    },
    async close() { await session.release(); },
  };
}
