import { clip } from '../errors.js';
import type { RunRecord, StageRunRecord } from './types.js';

/**
 * DynamoDB refuses an item over 400 KB, and a refused record is a lost one.
 * A record is kept well under it (attribute names and the TTL count too, and
 * the SDK's measure is not ours), whatever the request put into it.
 */
export const RECORD_MAX_BYTES = 300_000;

/** The request's error as a record holds it. */
export const RECORD_ERROR_CHARS = 2_000;
/** One stage's error. */
export const STAGE_ERROR_CHARS = 500;
/** Stage lines kept when a record is still too large with short errors. */
export const RECORD_MAX_STAGES = 200;
/** Batch sizes kept per stage line in that case. */
export const STAGE_MAX_BATCH_SIZES = 100;
/** Findings kept per record (a manifest with many monitors on a bad request), and each one's message. */
export const RECORD_MAX_FINDINGS = 50;
export const FINDING_MESSAGE_CHARS = 300;

/** Records fitRecord made: fitting one again would only copy it. */
const fitted = new WeakSet<RunRecord>();

/** Whether `record` came from fitRecord (and so is as it can be stored). */
export function isFitted(record: RunRecord): boolean {
  return fitted.has(record);
}

/** The record as it can be stored: long texts and lists cut, and `truncated: true` when anything was. */
export function fitRecord(record: RunRecord): RunRecord {
  const out = fit(record);
  fitted.add(out);
  return out;
}

function fit(record: RunRecord): RunRecord {
  let cut = false;
  const short = (text: string, max: number) => {
    if (text.length <= max) return text;
    cut = true;
    return clip(text, max);
  };
  const out: RunRecord = { ...record, stages: record.stages.map((s) => s.error === undefined ? s : { ...s, error: short(s.error, STAGE_ERROR_CHARS) }) };
  if (out.error !== undefined) out.error = short(out.error, RECORD_ERROR_CHARS);
  if (record.findings) {
    if (record.findings.length > RECORD_MAX_FINDINGS) cut = true;
    out.findings = record.findings.slice(0, RECORD_MAX_FINDINGS).map((f) => ({
      ...f, tensor: short(f.tensor, 200), message: short(f.message, FINDING_MESSAGE_CHARS),
    }));
  }
  for (const key of ['pipeline', 'version', 'transport', 'traceId'] as const) {
    const v = out[key];
    if (typeof v === 'string') out[key] = short(v, 200);
  }
  // The common record (few stages, short texts) cannot be over the limit: it is never serialized just to be measured.
  if (mayBeLarge(out) && size(out) > RECORD_MAX_BYTES) {
    cut = true;
    out.stages = out.stages.slice(0, RECORD_MAX_STAGES).map(shortStage);
    if (record.stages.length > RECORD_MAX_STAGES) out.stagesOmitted = record.stages.length - RECORD_MAX_STAGES;
    if (size(out) > RECORD_MAX_BYTES) {
      // Only a pathological record gets here: keep what says what happened, drop the detail.
      out.stagesOmitted = record.stages.length;
      out.stages = [];
    }
  }
  if (cut) out.truncated = true;
  return out;
}

function shortStage(s: StageRunRecord): StageRunRecord {
  const out = { ...s, stage: clip(s.stage, 200) };
  if (s.batchSizes.length > STAGE_MAX_BATCH_SIZES) out.batchSizes = s.batchSizes.slice(0, STAGE_MAX_BATCH_SIZES);
  return out;
}

/**
 * Whether the record could be over the limit once its texts are short: with
 * few stages, short names and short batch lists it cannot, and the common
 * record is then never serialized just to be measured.
 */
function mayBeLarge(record: RunRecord): boolean {
  return record.stages.length > 50 || record.stages.some((s) => s.batchSizes.length > STAGE_MAX_BATCH_SIZES || s.stage.length > 200);
}

function size(record: RunRecord): number {
  return Buffer.byteLength(JSON.stringify(record));
}
