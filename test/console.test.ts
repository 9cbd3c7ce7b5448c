/**
 * The console in a real headless Chromium against a real server: the
 * pipelines it lists, the demo request sent from its form and that run's
 * waterfall checked against the run record, an OCR image uploaded as a raw
 * body, the OCR DAG with its fan-out stages, deep links on reload, and the
 * API key field in front of a gateway that wants one.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { renderTextImage } from '../packages/tools/src/bench/render.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import type { PipelineView } from '../packages/console/src/pipeline-view.js';
import { REPO } from './helpers/pipelines.js';

const CHROMIUM = '/usr/bin/chromium';
// Debian's chromium package; .ci/run installs it where apt-get is available.
const noBrowser = !existsSync(CHROMIUM);

let root: string;
let server: RunningServer;
let browser: Browser | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-console-'));
  server = await startServer({ port: 0, dataDir: join(root, 'data'), modelsDir: join(REPO, 'models'), pipelines: ['demo', 'ocr'], env: {}, log: () => undefined });
  if (!noBrowser) browser = await chromium.launch({ executablePath: CHROMIUM });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function record(id: string): Promise<RunRecord> {
  const res = await fetch(`${server.url}/v2/runs/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as RunRecord;
}

async function open(path: string): Promise<Page> {
  const page = await browser!.newPage({ viewport: { width: 1500, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('close', () => expect(errors, 'errors thrown in the page').toEqual([]));
  await page.goto(`${server.url}${path}`);
  return page;
}

/** What the waterfall drew for each stage: the row's figures and its bars mapped back to milliseconds. */
async function waterfallRows(page: Page) {
  return page.$$eval('svg.waterfall', (svgs) => {
    const svg = svgs[0];
    const x0 = Number(svg.getAttribute('data-origin-x'));
    const k = Number(svg.getAttribute('data-px-per-ms'));
    return [...svg.querySelectorAll('g.wf-row')].map((g) => {
      const queue = g.querySelector('rect[data-part="queue"]');
      const work = g.querySelector('rect[data-part="work"]');
      const num = (el: { getAttribute(a: string): string | null } | null, a: string) => Number(el?.getAttribute(a));
      return {
        stage: g.getAttribute('data-stage')!,
        startMs: Number(g.getAttribute('data-start-ms')),
        endMs: Number(g.getAttribute('data-end-ms')),
        items: Number(g.getAttribute('data-items')),
        batches: Number(g.getAttribute('data-batches')),
        critical: g.getAttribute('data-critical') === 'true',
        drawnStartMs: (num(queue, 'x') - x0) / k,
        drawnEndMs: (num(work, 'x') + num(work, 'width') - x0) / k,
        batchBars: g.querySelectorAll('rect[data-batch-size]').length,
        label: g.querySelector('.wf-name')?.textContent ?? '',
        onePixelMs: 1 / k,
      };
    });
  });
}

describe('the console routes', () => {
  it('answers its page for every view path, so deep links work on reload', async () => {
    for (const path of ['/console', '/console/runs', '/console/live', '/console/pipelines/ocr', '/console/runs/00000000-0000-4000-8000-000000000000']) {
      const res = await fetch(`${server.url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(/^text\/html/);
      expect(await res.text(), path).toContain('/console/assets/main.js');
    }
    const js = await fetch(`${server.url}/console/assets/main.js`);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
  });

  it('serves only its own flat asset names and says which pipeline it does not know', async () => {
    expect((await fetch(`${server.url}/console/assets/..%2Fsrc%2Froutes.ts`)).status).toBe(404);
    expect((await fetch(`${server.url}/console/assets/routes.ts`)).status).toBe(404);
    const missing = await fetch(`${server.url}/console/api/pipelines/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: "unknown model 'nope'" });
  });

  it('gives a pipeline\'s graph from its manifest and its stages\' live state', async () => {
    const view = (await (await fetch(`${server.url}/console/api/pipelines/ocr`)).json()) as PipelineView;
    const m = await loadManifest(join(REPO, 'models', 'ocr', 'pipeline.yaml'));
    expect(view.stages.map((s) => s.name)).toEqual(m.order);
    const crop = view.stages.find((s) => s.name === 'crop');
    expect(crop).toMatchObject({ kind: 'function', fanout: true, inputs: { rgb: 'rgb', boxes: 'boxes' }, live: { queued: 0, inFlight: 0, ready: true } });
    const recognize = view.stages.find((s) => s.name === 'recognize');
    expect(recognize).toMatchObject({ kind: 'onnx', batch: { maxSize: 1 }, scale: { instances: 2 }, live: { ready: true, workers: 2 } });
    expect(view.levels).toMatchObject({ image: 0, line: 1, text: 2 });
  });
});

describe.skipIf(noBrowser)(`the console in Chromium (${CHROMIUM})`, () => {
  it('lists the served pipelines', async () => {
    const page = await open('/console');
    await page.waitForSelector('a.card[data-pipeline="ocr"] .chips');
    expect(await page.$$eval('a.card', (cards) => cards.map((c) => c.getAttribute('data-pipeline')))).toEqual(['demo', 'ocr']);
    await page.close();
  });

  it('sends the demo request its form prefills, opens that run\'s waterfall and draws the run record\'s stages and times', async () => {
    const page = await open('/console/pipelines/demo');
    const body = await page.inputValue('form.request-form textarea');
    expect(JSON.parse(body)).toEqual({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [0.1, 0.2, 0.3, 0.4] }] });
    await page.click('form.request-form button[type=submit]');
    await page.waitForURL(/\/console\/runs\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').pop()!;
    await page.waitForSelector('svg.waterfall g.wf-row');
    const rec = await record(id);
    expect(rec).toMatchObject({ pipeline: 'demo', status: 'succeeded', httpStatus: 200 });
    const rows = await waterfallRows(page);
    expect(rows.map((r) => r.stage).sort()).toEqual(rec.stages.map((s) => s.stage).sort());
    for (const s of rec.stages) {
      const row = rows.find((r) => r.stage === s.stage)!;
      expect(s.startMs, s.stage).toBeTypeOf('number');
      expect(row).toMatchObject({ startMs: s.startMs, endMs: s.endMs, items: s.items, batches: s.batches, batchBars: s.batchSizes.length });
      // The bars sit where the record's times put them on the axis (to a pixel).
      expect(Math.abs(row.drawnStartMs - s.startMs!)).toBeLessThan(row.onePixelMs);
      expect(Math.abs(row.drawnEndMs - s.endMs!)).toBeLessThan(row.onePixelMs * 1.5);
    }
    // average waits for both branches: it ends last, and the path runs back through the branch that ended later.
    const later = [...rec.stages].filter((s) => s.stage !== 'average').sort((a, b) => b.endMs! - a.endMs!)[0].stage;
    expect(rows.filter((r) => r.critical).map((r) => r.stage).sort()).toEqual(['average', later].sort());
    expect(await page.textContent('#run-status')).toBe('succeeded (HTTP 200)');
    // The response the form received is kept with the run.
    expect(await page.textContent('details.response pre')).toContain('"model_name": "demo"');

    await page.reload();
    await page.waitForSelector('svg.waterfall g.wf-row');
    expect((await waterfallRows(page)).map((r) => r.stage).sort()).toEqual(rows.map((r) => r.stage).sort());
    await page.close();
  });

  it('draws the OCR DAG: every stage, every tensor edge by name, the two fan-out stages marked', async () => {
    const m = await loadManifest(join(REPO, 'models', 'ocr', 'pipeline.yaml'));
    const page = await open('/console/pipelines/ocr');
    await page.waitForSelector('svg.dag g.stage');
    const nodes = await page.$$eval('svg.dag g.stage', (gs) => gs.map((g) => ({
      stage: g.getAttribute('data-stage'), fanout: g.getAttribute('data-fanout'), badge: g.querySelector('.badge-text')?.textContent ?? null,
    })));
    expect(nodes.map((n) => n.stage)).toEqual(m.order);
    expect(nodes.filter((n) => n.fanout === 'true').map((n) => n.stage)).toEqual(['crop', 'filter-lines']);
    expect(nodes.filter((n) => n.badge === 'fan-out').map((n) => n.stage)).toEqual(['crop', 'filter-lines']);
    const edges = await page.$$eval('svg.dag path[data-edge]', (ps) => ps.map((p) => ({ edge: p.getAttribute('data-edge')!, tensors: p.getAttribute('data-tensors')!.split(',') })));
    const producer = new Map<string, string>(m.inputs.map((t) => [t.name, `in:${t.name}`]));
    for (const s of m.stages) for (const t of Object.values(s.outputs)) producer.set(t, `stage:${s.name}`);
    for (const s of m.stages) {
      for (const t of Object.values(s.inputs)) {
        const edge = `${producer.get(t)}->stage:${s.name}`;
        expect(edges.find((e) => e.edge === edge)?.tensors, edge).toContain(t);
      }
    }
    // Where each function stage runs, as the worker pool placed it.
    const meta = Object.fromEntries(await page.$$eval('svg.dag g.stage', (gs) => gs.map((g) => [g.getAttribute('data-stage'), g.textContent ?? ''])));
    expect(meta['detect-pre']).toContain('runs with detect, before it');
    expect(meta['detect-post']).toContain('runs with detect, after it');
    expect(meta['rec-pre']).toContain('runs with recognize, before it');
    expect(meta.crop).toContain('runs in the gateway');
    const labels = await page.$$eval('svg.dag text.edge-label', (ts) => ts.map((t) => t.textContent));
    for (const t of ['rgb', 'det_scale', 'line', 'line_box', 'rec_best']) expect(labels, t).toContain(t);
    // Clicking a stage shows its settings.
    await page.click('svg.dag g.stage[data-stage="recognize"]');
    await page.waitForSelector('[data-stage-panel="recognize"]');
    // The stage's scale as this machine loaded it (`threads: auto` is its core count).
    const rec = m.stages.find((st) => st.name === 'recognize')!;
    const threads = `${rec.scale.threads} thread${rec.scale.threads === 1 ? '' : 's'}`;
    expect(await page.textContent('[data-stage-panel="recognize"]')).toContain(`${rec.scale.instances} instances × ${threads}`);
    await page.close();
  });

  it('uploads an image to OCR as the raw body and draws its fan-out stages with the record\'s item and batch counts', async () => {
    const png = await renderTextImage({ lines: ['Invoice total 4200', 'paid in full'], size: 30 });
    const page = await open('/console/pipelines/ocr');
    await page.setInputFiles('form.request-form input[type=file]', { name: 'page.png', mimeType: 'image/png', buffer: png });
    await page.click('form.request-form button[type=submit]');
    await page.waitForURL(/\/console\/runs\/[0-9a-f-]{36}$/, { timeout: 30_000 });
    await page.waitForSelector('svg.waterfall g.wf-row');
    const rec = await record(page.url().split('/').pop()!);
    expect(rec.status).toBe('succeeded');
    const rows = await waterfallRows(page);
    const rec2 = rec.stages.find((s) => s.stage === 'recognize')!;
    expect(rec2.items).toBeGreaterThanOrEqual(2); // one item per detected line
    for (const s of rec.stages) {
      expect(rows.find((r) => r.stage === s.stage), s.stage).toMatchObject({ items: s.items, batches: s.batches, startMs: s.startMs, endMs: s.endMs });
    }
    // A chain: the response waited on every stage, and the rows are in the manifest's order.
    expect(rows.map((r) => r.stage)).toEqual(rec.stages.map((s) => s.stage));
    expect(rows.every((r) => r.critical)).toBe(true);
    // The stages run beside a model (in its worker) have no row of their own, and are on the path where it is.
    const m = await loadManifest(join(REPO, 'models', 'ocr', 'pipeline.yaml'));
    expect(rows.length).toBeLessThan(m.order.length);
    expect(await page.textContent('body')).toContain(m.order.join(' → '));
    expect(await page.textContent('details.response pre')).toContain('"model_name": "ocr"');
    await page.close();
  });

  it('shows the live charts, saying where each figure comes from when there is no /metrics', async () => {
    const hasMetrics = (await fetch(`${server.url}/metrics`)).status === 200;
    const page = await open('/console/live?pipeline=demo');
    await page.waitForSelector('svg.chart');
    await page.waitForFunction("document.getElementById('metrics-state')?.dataset.metrics !== undefined");
    expect(await page.$eval('#metrics-state', (e) => e.dataset.metrics)).toBe(hasMetrics ? 'present' : 'absent');
    if (!hasMetrics) expect(await page.textContent('#metrics-state')).toContain('No metrics yet');
    const titles = await page.$$eval('svg.chart', (cs) => cs.map((c) => c.getAttribute('data-chart')));
    expect(titles).toEqual(['Throughput (requests/s)', 'Latency p50 / p99 (ms)', 'Queue depth per stage (items)', 'Batch sizes per stage']);
    await page.close();
  });
});

describe.skipIf(noBrowser)('the console in front of a gateway with an API key', () => {
  let keyed: RunningServer;
  beforeAll(async () => {
    keyed = await startServer({ port: 0, dataDir: join(root, 'data-keyed'), modelsDir: join(REPO, 'models'), pipelines: ['demo'], env: {}, apiKey: 'console-secret', log: () => undefined });
  });
  afterAll(async () => { await keyed?.close(); });

  it('serves its page without the key, its data only with it, and sends the key typed into its field', async () => {
    expect((await fetch(`${keyed.url}/console/pipelines/demo`)).status).toBe(200);
    expect((await fetch(`${keyed.url}/console/api/pipelines/demo`)).status).toBe(401);
    const page = await browser!.newPage();
    await page.goto(`${keyed.url}/console`);
    await page.waitForSelector('#view-error');
    expect(await page.textContent('#key-state')).toBe('key refused or missing');
    await page.fill('#api-key', 'console-secret');
    await page.click('#key-form button');
    await page.waitForSelector('a.card[data-pipeline="demo"]');
    // Kept for this tab only.
    expect(await page.evaluate("sessionStorage.getItem('ensemble.apiKey')")).toBe('console-secret');
    await page.close();
  });
});
