/**
 * Monitors on a pipeline's inputs and outputs and observer modules, through
 * a real server: every rule with each action (a finding in the run record,
 * or a refusal naming the tensor and the rule), drift against the first
 * window served and against a reference file `ensemble monitor reference`
 * wrote, and the example observer module loaded from a manifest.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import type { Finding, RunRecord } from '../packages/core/src/storage/types.js';
import { getJson, postJson } from './helpers/http.js';
import { runCli } from './helpers/cli.js';
import { REPO } from './helpers/pipelines.js';

let root: string;
let server: RunningServer;

async function write(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
}

const SUM = `
export default {
  process(item: any) {
    const all = [...item.a.data, ...item.b.data] as number[];
    return { y: { datatype: 'FP32', shape: [1], data: Float32Array.from([all.reduce((s, v) => s + v, 0)]) } };
  },
};
`;
const IDENTITY = `export default { process(item: any) { return { y: item.x }; } };`;
const OBSERVER = join(REPO, 'models/demo/observers/slow-requests.ts');

const checksYaml = (log: string) => `
name: checks
inputs:
  - name: a
    datatype: FP32
    shape: [-1, 2]
    monitors:
      - { rule: range, min: 0, max: 1, action: reject }
      - { rule: finite, action: record }
  - name: b
    datatype: FP32
    shape: [-1, 2]
    monitors:
      - { rule: range, max: 10 }
      - { rule: finite, action: reject }
  - name: t
    datatype: BYTES
    shape: [-1]
    monitors:
      - { rule: shape, max_length: 8, action: reject }
      - { rule: shape, min_length: 2 }
outputs:
  - name: y
    datatype: FP32
    shape: [-1, 1]
    monitors:
      - { rule: range, max: 100, action: reject }
      - { rule: range, max: 50 }
observers:
  - module: ${OBSERVER}
    options: { threshold_ms: 0, file: ${log} }
stages:
  - { name: sum, kind: function, module: sum.ts, inputs: [a, b, t], outputs: [y] }
`;

const DRIFT_YAML = `
name: drifting
inputs:
  - name: x
    datatype: FP32
    shape: [-1, 2]
    monitors:
      - { rule: drift, stat: mean, window: 4, threshold: 1 }
      - { rule: drift, stat: histogram, bins: 4, min: 0, max: 1, reference: file, file: reference.json, window: 4 }
outputs:
  - name: y
    datatype: FP32
    shape: [-1, 2]
    monitors:
      - { rule: drift, stat: std, window: 4, threshold: 0.5 }
stages:
  - { name: same, kind: function, module: identity.ts, inputs: [x], outputs: [y] }
`;

/** Rows in [0, 0.5): the traffic the reference describes. */
const USUAL = [[0.1, 0.2], [0.3, 0.4], [0.05, 0.45], [0.25, 0.15]];
/** Rows near 1: shifted. */
const SHIFTED = [[0.9, 0.95], [0.92, 0.97], [0.91, 0.99], [0.93, 0.96]];

const checksBody = (a: number[], b: number[], t = 'okay') => ({
  inputs: [
    { name: 'a', datatype: 'FP32', shape: [1, 2], data: a },
    { name: 'b', datatype: 'FP32', shape: [1, 2], data: b },
    { name: 't', datatype: 'BYTES', shape: [1], data: [t] },
  ],
});
const driftBody = (rows: number[][]) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 2], data: rows.flat() }] });

async function infer(name: string, body: unknown) {
  const res = await postJson(`${server.url}/v2/models/${name}/infer`, body);
  const id = res.headers.get('x-ensemble-run-id');
  expect(id).toBeTruthy();
  await server.env.runs.flush();
  const run = (await getJson<RunRecord>(`${server.url}/v2/runs/${id}`)).body;
  return { status: res.status, error: (res.body as { error?: string }).error, run, findings: run.findings ?? [] };
}

const rules = (fs: Finding[]) => fs.map((f) => `${f.tensor}:${f.rule}:${f.action}`).sort();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-monitors-'));
  const models = join(root, 'models');
  await write(join(models, 'checks', 'pipeline.yaml'), checksYaml(join(root, 'observed.log')));
  await write(join(models, 'checks', 'sum.ts'), SUM);
  await write(join(models, 'drifting', 'pipeline.yaml'), DRIFT_YAML);
  await write(join(models, 'drifting', 'identity.ts'), IDENTITY);
  await write(join(root, 'usual.json'), JSON.stringify(driftBody(USUAL)));
  // The reference is written before the server loads the manifest that names it.
  const cli = await runCli(['monitor', 'reference', join(models, 'drifting', 'pipeline.yaml'), join(root, 'usual.json')]);
  expect(cli.stderr).toBe('');
  expect(cli.code).toBe(0);
  // A server-wide observer (ensemble serve --observer): every pipeline's runs, with the context it was made with.
  await write(join(root, 'everyone.ts'), `
import { appendFileSync } from 'node:fs';
export default {
  create: (ctx: any) => ({
    requestEnded: (e: any) => appendFileSync(${JSON.stringify(join(root, 'everyone.log'))}, JSON.stringify({ made: ctx.pipeline, run: e.record.pipeline, findings: e.record.findings?.length ?? 0 }) + '\\n'),
  }),
};
`);
  server = await startServer({ port: 0, dataDir: join(root, 'data'), modelsDir: models, env: {}, log: () => undefined, observers: [join(root, 'everyone.ts')] });
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('request monitors', () => {
  it('lets a request that passes every rule through with no findings', async () => {
    const r = await infer('checks', checksBody([0.5, 0.5], [1, 2]));
    expect(r.status).toBe(200);
    expect(r.run.findings).toBeUndefined();
  });

  it('range: rejects an input out of bounds with 400 naming the tensor and the rule, the finding in its run record', async () => {
    const r = await infer('checks', checksBody([0.5, 1.5], [1, 2]));
    expect(r.status).toBe(400);
    expect(r.error).toBe("input 'a' rejected by its range monitor: values reach 1.5 (above max 1), outside [0, 1]");
    expect(r.run.status).toBe('failed');
    expect(r.findings).toEqual([{ tensor: 'a', rule: 'range', action: 'reject', message: 'values reach 1.5 (above max 1), outside [0, 1]', value: 1.5 }]);
    expect(r.run.stages.every((s) => s.items === 0)).toBe(true);
  });

  it('range: records an input out of bounds and an output over its recording bound, and answers', async () => {
    const r = await infer('checks', checksBody([0.5, 0.5], [60, 0]));
    expect(r.status).toBe(200);
    expect(rules(r.findings)).toEqual(['b:range:record', 'y:range:record']);
    expect(r.findings.find((f) => f.tensor === 'y')).toMatchObject({ value: 61, message: 'values reach 61 (above max 50), outside [-∞, 50]' });
  });

  it('range on an output: rejects with 422, the request having run', async () => {
    const r = await infer('checks', checksBody([0.5, 0.5], [200, 0]));
    expect(r.status).toBe(422);
    expect(r.error).toMatch(/^output 'y' rejected by its range monitor: values reach 201/);
    expect(r.run.httpStatus).toBe(422);
    expect(r.run.stages.find((s) => s.stage === 'sum')?.items).toBe(1);
    expect(rules(r.findings)).toEqual(['b:range:record', 'y:range:record', 'y:range:reject']);
  });

  it('finite: records an infinite value on one input and rejects it on another', async () => {
    // 1e39 does not fit FP32: it is Infinity once decoded.
    const recorded = await infer('checks', checksBody([0.5, 1e39], [1, 2]));
    // Infinity is also out of a's range, which rejects.
    expect(recorded.status).toBe(400);
    expect(rules(recorded.findings)).toEqual(['a:finite:record', 'a:range:reject']);
    expect(recorded.findings.find((f) => f.rule === 'finite')).toEqual({ tensor: 'a', rule: 'finite', action: 'record', message: '1 of 2 values are not finite (1 infinite)', value: 1 });

    const rejected = await infer('checks', checksBody([0.5, 0.5], [1e39, 2]));
    expect(rejected.status).toBe(400);
    expect(rejected.error).toBe("input 'b' rejected by its finite monitor: 1 of 2 values are not finite (1 infinite)");
    expect(rules(rejected.findings)).toEqual(['b:finite:reject', 'b:range:record']);
  });

  it('shape: rejects a BYTES element over max_length and records one under min_length', async () => {
    const long = await infer('checks', checksBody([0.5, 0.5], [1, 2], 'much too long'));
    expect(long.status).toBe(400);
    expect(long.error).toBe("input 't' rejected by its shape monitor: element 0 is 13 bytes, over max_length 8");
    const short = await infer('checks', checksBody([0.5, 0.5], [1, 2], 'x'));
    expect(short.status).toBe(200);
    expect(short.findings).toEqual([{ tensor: 't', rule: 'shape', action: 'record', message: 'element 0 is 1 bytes, below min_length 2', value: 1 }]);
  });

  it('counts findings in /metrics by tensor, rule and action, and counts them again as they recur', async () => {
    const count = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('ensemble_monitor_findings_total{') && l.includes('tensor="b"') && l.includes('rule="range"') && l.includes('action="record"'));
      expect(line, 'a series for b:range:record').toBeDefined();
      expect(line).toContain('model="checks"');
      return Number(line!.split(' ').pop());
    };
    await infer('checks', checksBody([0.5, 0.5], [60, 0]));
    const before = await count();
    await infer('checks', checksBody([0.5, 0.5], [20, 0]));
    await infer('checks', checksBody([0.5, 0.5], [30, 0]));
    expect(await count()).toBe(before + 2);
  });
});

describe('drift', () => {
  it('finds nothing while traffic matches its references, then notes a shifted window against both', async () => {
    // The first 4 items: the mean monitor's reference window; for the histogram, the same values as its reference file.
    const first = await infer('drifting', driftBody(USUAL));
    expect(first.status).toBe(200);
    expect(first.findings).toEqual([]);

    const shifted = await infer('drifting', driftBody(SHIFTED));
    expect(shifted.status).toBe(200);
    const mean = shifted.findings.find((f) => f.message.startsWith('mean:'))!;
    const hist = shifted.findings.find((f) => f.message.startsWith('histogram:'))!;
    expect(mean).toMatchObject({ tensor: 'x', rule: 'drift', action: 'record' });
    expect(mean.message).toMatch(/^mean: mean of the last 4 items is 0\.94\d*, [\d.]+ reference standard deviations from the first 4 items' mean 0\.23\d* \(threshold 1\)$/);
    expect(mean.value).toBeGreaterThan(1);
    expect(hist.message).toMatch(/^histogram: the histogram of the last 4 items is [\d.]+ \(PSI\) from the reference file, over the threshold 0\.25$/);
    expect(hist.value).toBeGreaterThan(0.25);
    // The outputs are the inputs: their spread narrowed from about 0.13 to 0.03.
    const std = shifted.findings.find((f) => f.tensor === 'y')!;
    expect(std.message).toMatch(/^std: standard deviation of the last 4 items is 0\.0\d+, [\d.]+% off the first 4 items' 0\.1\d+ \(threshold 50%\)$/);
  });

  it('keeps noting while the rolling window stays shifted, and stops once it is back', async () => {
    const still = await infer('drifting', driftBody(SHIFTED.slice(0, 2)));
    expect(rules(still.findings)).toEqual(['x:drift:record', 'x:drift:record', 'y:drift:record']);
    const back = await infer('drifting', driftBody(USUAL));
    expect(back.findings).toEqual([]);
  });
});

describe('observer modules', () => {
  it('loads the example observer named by the manifest: a line per run over its threshold and per finding', async () => {
    const r = await infer('checks', checksBody([0.5, 0.5], [1, 2], 'x'));
    const log = await readFile(join(root, 'observed.log'), 'utf8');
    expect(log).toMatch(new RegExp(`^slow run ${r.run.id} checks v1: [\\d.]+ ms, HTTP 200; sum queue [\\d.]+ ms compute [\\d.]+ ms$`, 'm'));
    expect(log).toContain(`finding in run ${r.run.id} checks: t shape (record): element 0 is 1 bytes, below min_length 2`);
    // Rejected runs too, with their HTTP status.
    expect(log).toMatch(/^slow run \S+ checks v1: [\d.]+ ms, HTTP 422;/m);
  });

  it('tells a server-wide observer of every pipeline\'s runs, findings counted in their records', async () => {
    const lines = (await readFile(join(root, 'everyone.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { made: string; run: string; findings: number });
    expect(new Set(lines.map((l) => l.made))).toEqual(new Set(['']));
    expect(new Set(lines.map((l) => l.run))).toEqual(new Set(['checks', 'drifting']));
    expect(lines.some((l) => l.run === 'drifting' && l.findings === 3)).toBe(true);
  });
});
