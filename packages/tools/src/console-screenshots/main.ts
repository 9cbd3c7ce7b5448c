/**
 * `npm run screenshots`: serves demo and ocr from this checkout, puts a few
 * concurrent OCR requests on it (rendered multi-line pages), and writes the
 * console's views as PNGs into docs/console/: the OCR DAG with its live
 * state, the waterfall of an OCR run with fan-out, and the live charts under
 * that load. Needs Chromium (/usr/bin/chromium, or CHROMIUM=path).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from '../serve/server.js';
import { renderTextImage } from '../bench/render.js';

const REPO = resolve(new URL('../../../..', import.meta.url).pathname);
const OUT = join(REPO, 'docs', 'console');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** How long the load runs before the live charts are taken: long enough for a minute of lines. */
const LOAD_MS = Number(process.env.LOAD_MS ?? 60_000);
const CONCURRENCY = 3;

const PAGES = [
  ['Invoice 2024-117', 'Total amount due 4,200.00', 'Paid by bank transfer', 'Thank you for your order'],
  ['Quarterly market report', 'Revenue grew 12 percent', 'Shipping costs fell'],
  ['The quick brown fox', 'jumps over the lazy dog', 'again and again', 'until the sun sets', 'over the hills'],
  ['Delivery address', '42 Station Street', 'Springfield'],
];

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM`);
  await mkdir(OUT, { recursive: true });
  const data = await mkdtemp(join(tmpdir(), 'ensemble-screenshots-'));
  const server = await startServer({ port: 0, dataDir: data, modelsDir: join(REPO, 'models'), pipelines: ['demo', 'ocr'], env: {}, log: (s) => console.error(`[ensemble] ${s}`) });
  const browser = await chromium.launch({ executablePath: CHROMIUM });
  const images = await Promise.all(PAGES.map((lines, i) => renderTextImage({ lines, size: 26 + 4 * (i % 3), font: ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono'][i % 3] })));
  /** The run with the most lines, for the waterfall. */
  let widest = { id: '', lines: 0 };
  let stop = false;
  const worker = async (w: number) => {
    for (let n = w; !stop; n += CONCURRENCY) {
      const i = n % images.length;
      const res = await fetch(`${server.url}/v2/models/ocr/infer`, { method: 'POST', body: images[i], headers: { 'content-type': 'image/png' } });
      await res.arrayBuffer();
      if (res.ok && PAGES[i].length >= widest.lines) widest = { id: res.headers.get('x-ensemble-run-id') ?? '', lines: PAGES[i].length };
      // A demo request now and then, so its pipeline has runs too.
      if (n % 5 === 0) {
        await fetch(`${server.url}/v2/models/demo/infer`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: [0.1, 0.2, 0.3, 0.4, 1, 2, 3, 4] }] }),
        }).then((r) => r.arrayBuffer());
      }
    }
  };
  try {
    const live = await browser.newPage({ viewport: { width: 1320, height: 900 }, deviceScaleFactor: 1 });
    await live.goto(`${server.url}/console/live?pipeline=ocr`);
    const load = Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
    const started = Date.now();

    // The DAG while the load runs: its live figures are not all zero.
    await new Promise((r) => setTimeout(r, 8_000));
    // Tall enough for the whole OCR DAG: a clip is taken from what the viewport holds.
    const dag = await browser.newPage({ viewport: { width: 1480, height: 2400 } });
    await dag.goto(`${server.url}/console/pipelines/ocr`);
    await dag.waitForSelector('svg.dag g.stage');
    await dag.click('svg.dag g.stage[data-stage="recognize"]');
    await dag.waitForTimeout(2_500);
    // From the title to the bottom of the DAG and its side panel; the runs table below is the runs view's picture.
    const top = await dag.$eval('main', (m) => m.getBoundingClientRect());
    const layout = await dag.$eval('.pipeline-layout', (m) => m.getBoundingClientRect());
    await dag.screenshot({ path: join(OUT, 'ocr-dag.png'), clip: { x: top.x, y: top.y, width: top.width, height: layout.bottom - top.y + 16 } });
    await dag.close();

    await new Promise((r) => setTimeout(r, Math.max(0, LOAD_MS - (Date.now() - started))));
    await live.waitForTimeout(500);
    await (await live.$('main'))!.screenshot({ path: join(OUT, 'live-charts.png') });
    stop = true;
    await load;

    const wf = await browser.newPage({ viewport: { width: 1320, height: 900 } });
    await wf.goto(`${server.url}/console/runs/${widest.id}`);
    await wf.waitForSelector('svg.waterfall g.wf-row');
    await (await wf.$('main'))!.screenshot({ path: join(OUT, 'ocr-waterfall.png') });

    await wf.goto(`${server.url}/console`);
    await wf.waitForSelector('a.card[data-pipeline="ocr"] .chips');
    await (await wf.$('main'))!.screenshot({ path: join(OUT, 'pipelines.png') });
    console.error(`wrote ${['ocr-dag.png', 'ocr-waterfall.png', 'live-charts.png', 'pipelines.png'].map((f) => join('docs/console', f)).join(', ')}`);
  } finally {
    stop = true;
    await browser.close();
    await server.close();
    await rm(data, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
