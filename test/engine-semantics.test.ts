/**
 * What must hold for every manifest that loads, checked through the executor
 * and through HTTP on one server: sibling fan-outs, ragged outputs, a request
 * larger than a stage's queue, outputs that prune the work, the request row of
 * fan-out items, and conditional stages.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { RunFailure } from '../packages/core/src/executor/executor.js';
import type { Tensor } from '../packages/core/src/tensor/types.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { probeEvents, probeModule, resetProbe } from '../packages/core/test/executor/harness.js';
import { getJson, postJson } from './helpers/http.js';

let root: string;
let server: RunningServer;
let base: string;

async function write(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
}

const f32 = (rows: number[][]): Tensor => ({ datatype: 'FP32', shape: [rows.length, rows[0]?.length ?? 0], data: Float32Array.from(rows.flat()) });
const run = (name: string, inputs: Record<string, Tensor>, outputs?: string[]) => server.registry.get(name).executor.run(inputs, { outputs });
const infer = (name: string, body: unknown) => postJson(`${base}/v2/models/${name}/infer`, body);
const values = (t: Tensor) => Array.from(t.data as ArrayLike<number | bigint>, Number);

async function record(id: string): Promise<RunRecord> {
  await server.env.runs.flush();
  return (await getJson<RunRecord>(`${base}/v2/runs/${id}`)).body;
}

const PIPELINES: Record<string, Record<string, string>> = {
  // One image, two fan-outs of it (regions and tiles) that a later stage reads separately.
  siblings: {
    'pipeline.yaml': `
name: siblings
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs:
  - { name: region_sum, datatype: FP32, shape: [-1, 1] }
  - { name: tile_double, datatype: FP32, shape: [-1, 1] }
stages:
  - { name: regions, kind: function, module: regions.ts, fanout: true, inputs: [x], outputs: [r] }
  - { name: tiles, kind: function, module: tiles.ts, fanout: true, inputs: [x], outputs: [t] }
  - { name: sum, kind: function, module: sum.ts, inputs: [x, r], outputs: [region_sum] }
  - { name: double, kind: function, module: double.ts, inputs: [t], outputs: [tile_double] }
`,
    // x -> two regions x+1, x+2; three tiles 10x, 10x+1, 10x+2
    'regions.ts': probeModule('const v = item.x.data[0]; return [1, 2].map((k) => ({ r: f32([v + k], [1]) }));'),
    'tiles.ts': probeModule('const v = item.x.data[0]; return [0, 1, 2].map((k) => ({ t: f32([10 * v + k], [1]) }));'),
    'sum.ts': probeModule('return { region_sum: f32([item.x.data[0] + item.r.data[0]], [1]) };'),
    'double.ts': probeModule('return { tile_double: f32([2 * item.t.data[0]], [1]) };'),
  },
  // Items of different lengths: padded, with their real shapes and their request row beside them.
  ragged: {
    'pipeline.yaml': `
name: ragged
inputs: [{ name: n, datatype: FP32, shape: [-1, 1] }]
outputs:
  - name: seq
    datatype: FP32
    shape: [-1, -1]
    ragged: { pad_value: -1, lengths: seq_shape }
    row_index: seq_row
stages:
  - name: make
    kind: function
    module: make.ts
    inputs: [n]
    outputs: [{ name: seq, datatype: FP32, shape: [-1, -1] }]
`,
    // row with value n -> a sequence 1..n
    'make.ts': probeModule('const n = item.n.data[0]; return { seq: f32(Array.from({ length: n }, (_, i) => i + 1), [n]) };'),
  },
  // A fan-out of many more items than the next stage's queue holds.
  wide: {
    'pipeline.yaml': `
name: wide
inputs: [{ name: n, datatype: FP32, shape: [-1, 1] }]
outputs:
  - { name: y, datatype: FP32, shape: [-1, 1] }
  - { name: y_row, datatype: INT64, shape: [-1] }
stages:
  - { name: spread, kind: function, module: spread.ts, fanout: true, inputs: [n], outputs: [v] }
  - name: slow
    kind: function
    module: slow.ts
    inputs: [v]
    outputs: [{ name: y, datatype: FP32, shape: [-1, 1] }]
    batch: { max_size: 4, max_queue: 16, max_delay_ms: 0 }
    scale: { instances: 1 }
  - { name: rows, kind: function, module: rows.ts, inputs: [v], outputs: [y_row] }
`,
    'spread.ts': probeModule('const n = item.n.data[0]; return Array.from({ length: n }, (_, i) => ({ v: f32([i], [1]) }));'),
    'slow.ts': probeModule('await sleep(1); return { y: f32([item.v.data[0] + 0.5], [1]) };'),
    'rows.ts': probeModule('return { y_row: { datatype: "INT64", shape: [], data: BigInt64Array.of(BigInt(item.v.data[0])) } };'),
  },
  // An expensive stage only for the items a cheap one flags; the others keep the cheap answer.
  gated: {
    'pipeline.yaml': `
name: gated
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs: [{ name: answer, datatype: FP32, shape: [-1, 1] }]
stages:
  - name: cheap
    kind: function
    module: cheap.ts
    inputs: [x]
    outputs:
      - { name: quick, datatype: FP32, shape: [-1, 1] }
      - { name: unsure, datatype: BOOL, shape: [-1] }
  - name: expensive
    kind: function
    module: expensive.ts
    inputs: [x]
    when: unsure
    otherwise: { answer: quick }
    outputs: [{ name: answer, datatype: FP32, shape: [-1, 1] }]
`,
    // unsure when x < 0; the cheap answer is x, the expensive one 100 + x
    'cheap.ts': probeModule('const v = item.x.data[0]; return { quick: f32([v], [1]), unsure: { datatype: "BOOL", shape: [], data: Uint8Array.of(v < 0 ? 1 : 0) } };'),
    'expensive.ts': probeModule('return { answer: f32([100 + item.x.data[0]], [1]) };'),
  },
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-semantics-'));
  const modelsDir = join(root, 'models');
  for (const [name, files] of Object.entries(PIPELINES)) {
    for (const [file, content] of Object.entries(files)) await write(join(modelsDir, name, file), content);
  }
  server = await startServer({ port: 0, dataDir: join(root, 'data'), modelsDir, env: {}, log: () => undefined });
  base = server.url;
});

afterAll(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

beforeEach(() => resetProbe());

describe('sibling fan-outs', () => {
  it('gives each fan-out of one item its own lineage (executor)', async () => {
    const r = await run('siblings', { x: f32([[1], [5]]) });
    // Row 1: regions 2, 3 -> 1+2, 1+3; row 5: 6, 7 -> 11, 12.
    expect(values(r.outputs.region_sum)).toEqual([3, 4, 11, 12]);
    // Row 1: tiles 10, 11, 12 -> doubled; row 5: 50, 51, 52.
    expect(values(r.outputs.tile_double)).toEqual([20, 22, 24, 100, 102, 104]);
  });

  it('answers over HTTP with both fan-outs', async () => {
    const res = await infer('siblings', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [2] }] });
    expect(res.status).toBe(200);
    const out = Object.fromEntries(res.body.outputs.map((o: { name: string; data: number[]; shape: number[] }) => [o.name, o]));
    expect(out.region_sum).toMatchObject({ shape: [2, 1], data: [5, 6] });
    expect(out.tile_double).toMatchObject({ shape: [3, 1], data: [40, 42, 44] });
  });
});

describe('ragged outputs', () => {
  it('pads items of different lengths and returns their shapes and rows (executor)', async () => {
    const r = await run('ragged', { n: f32([[2], [4], [1]]) });
    expect(r.outputs.seq.shape).toEqual([3, 4]);
    expect(values(r.outputs.seq)).toEqual([1, 2, -1, -1, 1, 2, 3, 4, 1, -1, -1, -1]);
    expect(r.outputs.seq_shape).toMatchObject({ datatype: 'INT64', shape: [3, 1] });
    expect(values(r.outputs.seq_shape)).toEqual([2, 4, 1]);
    expect(values(r.outputs.seq_row)).toEqual([0, 1, 2]);
  });

  it('answers 200 over HTTP, and lists the companions in the metadata', async () => {
    const res = await infer('ragged', { inputs: [{ name: 'n', datatype: 'FP32', shape: [2, 1], data: [3, 1] }] });
    expect(res.status).toBe(200);
    const out = Object.fromEntries(res.body.outputs.map((o: { name: string }) => [o.name, o]));
    expect(out.seq).toMatchObject({ shape: [2, 3], data: [1, 2, 3, 1, -1, -1] });
    expect(out.seq_shape).toMatchObject({ datatype: 'INT64', shape: [2, 1], data: [3, 1] });
    const meta = await getJson(`${base}/v2/models/ragged`);
    expect(meta.body.outputs.map((o: { name: string }) => o.name)).toEqual(['seq', 'seq_shape', 'seq_row']);
  });
});

describe('a request larger than a stage queue', () => {
  it('feeds its own 100 items through a queue of 16 instead of refusing itself (executor)', async () => {
    const r = await run('wide', { n: f32([[100]]) });
    expect(values(r.outputs.y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 0.5));
    const slow = r.stages.find((s) => s.stage === 'slow')!;
    expect(slow.items).toBe(100);
    expect(slow.error).toBeUndefined();
  });

  it('answers 200 over HTTP, with the request row of every fan-out item', async () => {
    const res = await infer('wide', { inputs: [{ name: 'n', datatype: 'FP32', shape: [2, 1], data: [30, 40] }] });
    expect(res.status).toBe(200);
    const y = res.body.outputs.find((o: { name: string }) => o.name === 'y');
    expect(y.shape).toEqual([70, 1]);
  });

  it('still answers 429 when other requests fill the queue', async () => {
    // Forty requests of 30 items at once: the stage holds what its calls in flight and its queue of 16
    // take; the requests that find it full of the others' items are refused, the rest all succeed.
    const all = await Promise.all(Array.from({ length: 40 }, () => run('wide', { n: f32([[30]]) }).then(() => 'ok', (e: unknown) => (e as RunFailure).error.code as string)));
    expect(all).toContain('ok');
    expect(new Set(all.filter((s) => s !== 'ok'))).toEqual(new Set(['overloaded']));
  });
});

describe('requested outputs prune the work', () => {
  it('runs only the stages that reach the outputs asked for (executor)', async () => {
    const r = await run('siblings', { x: f32([[1]]) }, ['tile_double']);
    expect(Object.keys(r.outputs)).toEqual(['tile_double']);
    expect(new Set(probeEvents().map((e) => e.stage))).toEqual(new Set(['tiles', 'double']));
    expect(r.stages.map((s) => s.stage).sort()).toEqual(['double', 'tiles']);
  });

  it('does the same over HTTP, and the run record lists only what ran', async () => {
    const res = await infer('siblings', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [1] }], outputs: [{ name: 'region_sum' }] });
    expect(res.status).toBe(200);
    expect(res.body.outputs.map((o: { name: string }) => o.name)).toEqual(['region_sum']);
    expect(new Set(probeEvents().map((e) => e.stage))).toEqual(new Set(['regions', 'sum']));
    const rec = await record(res.body.parameters.run_id);
    expect(rec.stages.map((s) => s.stage).sort()).toEqual(['regions', 'sum']);
  });
});

describe('conditional stages', () => {
  it('runs the expensive stage only for flagged items; the others keep the cheap answer (executor)', async () => {
    const r = await run('gated', { x: f32([[3], [-2], [7], [-5]]) });
    expect(values(r.outputs.answer)).toEqual([3, 98, 7, 95]);
    expect(probeEvents().filter((e) => e.stage === 'expensive' && e.what === 'start')).toHaveLength(2);
    const exp = r.stages.find((s) => s.stage === 'expensive')!;
    expect(exp).toMatchObject({ items: 2, skipped: 2 });
  });

  it('answers over HTTP when no item is flagged, without calling the stage', async () => {
    const res = await infer('gated', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 1], data: [1, 2] }] });
    expect(res.status).toBe(200);
    expect(res.body.outputs[0]).toMatchObject({ name: 'answer', shape: [2, 1], data: [1, 2] });
    expect(probeEvents().some((e) => e.stage === 'expensive')).toBe(false);
    const rec = await record(res.body.parameters.run_id);
    expect(rec.stages.find((s) => s.stage === 'expensive')).toMatchObject({ items: 0, skipped: 2 });
  });
});
