/**
 * What perf_analyzer (triton-inference-server/perf_analyzer) does with a
 * model before it sends load, replayed step by step: src/perf_analyzer.cc
 * asks the model's metadata and config, src/model_parser.cc (InitTriton)
 * reads max_batch_size, the inputs' shapes from the metadata (leaving out
 * dim 0 when max_batch_size > 0), checks every config input and output has
 * metadata, and for platform "ensemble" fetches each step's config (by
 * model_name and model_version, -1 meaning latest) and theirs in turn;
 * inference_profiler.cc asks /stats only when `GET /v2` lists `statistics`.
 * Then it builds its request as Triton's HTTP client does: [batch, ...dims],
 * every output requested.
 */
import { expect } from 'vitest';

export interface ParsedModel {
  name: string;
  maxBatchSize: number;
  ensemble: boolean;
  /** Input name -> datatype and shape without the batch dim (as model_parser keeps it). */
  inputs: Map<string, { datatype: string; shape: number[] }>;
  outputs: string[];
  /** Every composing model, with the version perf_analyzer would ask its statistics for ('' = latest). */
  composing: { name: string; version: string }[];
  statistics: boolean;
}

async function get(base: string, path: string): Promise<any> {
  const res = await fetch(`${base}${path}`);
  const body = await res.json();
  expect(res.status, `GET ${path}: ${JSON.stringify(body)}`).toBe(200);
  return body;
}

/** GetInt in model_parser.cc: a number, or a string holding one. */
function getInt(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  throw new Error(`failed to parse the integer value ${JSON.stringify(v)}`);
}

/** `shapes`: what `--shape NAME:d1,d2` (or `shape` in --input-data) gives an input with a -1 dim. */
export async function parseModel(base: string, model: string, version = '', shapes: Record<string, number[]> = {}): Promise<ParsedModel> {
  const server = await get(base, '/v2');
  const at = version ? `/v2/models/${model}/versions/${version}` : `/v2/models/${model}`;
  const metadata = await get(base, at);
  const config = await get(base, `${at}/config`);
  const composing: { name: string; version: string }[] = [];
  const addComposing = async (cfg: any): Promise<void> => {
    if (cfg.platform !== 'ensemble') return;
    for (const step of cfg.ensemble_scheduling.step) {
      const v = getInt(step.model_version);
      const stepVersion = v === -1 ? '' : String(v);
      composing.push({ name: step.model_name, version: stepVersion });
      const sub = await get(base, stepVersion ? `/v2/models/${step.model_name}/versions/${stepVersion}/config` : `/v2/models/${step.model_name}/config`);
      // The composing models' scheduler type is read off their configs.
      expect(sub.sequence_batching).toBeUndefined();
      await addComposing(sub);
    }
  };
  await addComposing(config);
  const maxBatchSize = config.max_batch_size === undefined ? 0 : getInt(config.max_batch_size);
  const inputs = new Map<string, { datatype: string; shape: number[] }>();
  for (const input of metadata.inputs) {
    const dims = (input.shape as unknown[]).map(getInt);
    let shape = maxBatchSize > 0 ? dims.slice(1) : dims;
    if (shape.includes(-1) && shapes[input.name]) shape = shapes[input.name];
    inputs.set(input.name, { datatype: input.datatype, shape });
  }
  for (const i of config.input ?? []) if (!inputs.has(i.name)) throw new Error(`no metadata found for input tensor ${i.name}`);
  const outputs = (metadata.outputs as { name: string }[]).map((o) => o.name);
  for (const o of config.output ?? []) if (!outputs.includes(o.name)) throw new Error(`no metadata found for output tensor ${o.name}`);
  expect(typeof metadata.name).toBe('string');
  return { name: metadata.name, maxBatchSize, ensemble: config.platform === 'ensemble', inputs, outputs, composing, statistics: server.extensions.includes('statistics') };
}

/** Little-endian bytes of one input, as perf_analyzer's data loader holds them for the binary format. */
export type InputData = Record<string, { bytes: Uint8Array; json: unknown[] }>;

/**
 * The request Triton's HTTP client (http_client.cc) sends for perf_analyzer: binary by
 * default (`--input-tensor-format binary`), or JSON; every output asked for, binary unless JSON.
 */
export async function sendAsPerfAnalyzer(base: string, p: ParsedModel, batch: number, data: InputData, format: 'binary' | 'json'): Promise<{ status: number; header: any }> {
  const inputs = [...p.inputs].map(([name, { datatype, shape }]) => {
    if (shape.includes(-1)) throw new Error(`input ${name} contains dynamic shape, provide shapes to send along with the request`);
    // InitInferDataInput in infer_data_manager.cc.
    if (shape.length === 0) throw new Error('unable to set shape for the input');
    const full = p.maxBatchSize > 0 ? [batch, ...shape] : shape;
    const d = data[name];
    return format === 'binary'
      ? { name, shape: full, datatype, parameters: { binary_data_size: d.bytes.byteLength } }
      : { name, shape: full, datatype, data: d.json };
  });
  const outputs = p.outputs.map((name) => (format === 'binary' ? { name, parameters: { binary_data: true } } : { name }));
  const header = new TextEncoder().encode(JSON.stringify({ inputs, outputs }));
  // curl's default content type for a POST body, which Triton's client leaves as is.
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  let body: Uint8Array = header;
  if (format === 'binary') {
    const blobs = [...p.inputs.keys()].map((n) => data[n].bytes);
    body = new Uint8Array(header.byteLength + blobs.reduce((s, b) => s + b.byteLength, 0));
    body.set(header);
    let at = header.byteLength;
    for (const b of blobs) { body.set(b, at); at += b.byteLength; }
    headers['inference-header-content-length'] = String(header.byteLength);
  }
  const res = await fetch(`${base}/v2/models/${p.name}/infer`, { method: 'POST', body, headers });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const length = res.headers.get('inference-header-content-length');
  const text = new TextDecoder().decode(length === null ? bytes : bytes.subarray(0, Number(length)));
  return { status: res.status, header: JSON.parse(text) };
}

/** The fields of one model_stats entry perf_analyzer reads with rapidjson's GetUint64 / GetString. */
export function expectPerfAnalyzerStat(stat: any): void {
  expect(typeof stat.name).toBe('string');
  expect(typeof stat.version).toBe('string');
  // std::stoll(version) in DetermineStatsModelVersion.
  expect(stat.version).toMatch(/^\d+$/);
  for (const k of ['inference_count', 'execution_count', 'last_inference']) expect(Number.isInteger(stat[k]), k).toBe(true);
  for (const k of ['success', 'fail', 'queue', 'compute_input', 'compute_infer', 'compute_output', 'cache_hit', 'cache_miss']) {
    expect(Number.isInteger(stat.inference_stats[k].count), `${k}.count`).toBe(true);
    expect(Number.isInteger(stat.inference_stats[k].ns), `${k}.ns`).toBe(true);
    expect(stat.inference_stats[k].ns).toBeGreaterThanOrEqual(0);
  }
}
