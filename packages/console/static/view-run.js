// /console/runs/{id}: one run record (GET /v2/runs/{id}) as a waterfall,
// its per-stage figures, the response the console got (if it sent the
// request) and the record's findings, if any.

import { HttpError, enc, getJson } from './api.js';
import { fmtMs, h } from './dom.js';
import { colocatedStages, criticalPath, drawWaterfall } from './waterfall.js';
import { stagePredecessors } from './graph.js';

/** @param {HTMLElement} root @param {string} id @returns {Promise<() => void>} */
export async function runView(root, id) {
  const rec = await fetchRun(id);
  /** @type {import('./graph.js').PipelineView | undefined} */
  let view;
  try { view = await getJson(`/console/api/pipelines/${enc(rec.pipeline)}`); } catch { view = undefined; }
  const path = view ? criticalPath(rec, stagePredecessors(view), colocatedStages(view), view.stages.map((x) => x.name)).reverse() : [];
  const figures = [
    ['pipeline', h('a', { href: `/console/pipelines/${enc(rec.pipeline)}`, text: `${rec.pipeline} v${rec.version}` })],
    ['status', h('span', { class: `badge ${rec.status === 'succeeded' ? 'ok' : 'bad'}`, id: 'run-status', text: `${rec.status} (HTTP ${rec.httpStatus})` })],
    ['started', new Date(rec.startedAt).toLocaleString()],
    ['duration', h('span', { id: 'run-duration', text: fmtMs(rec.durationMs) })],
    ['transport', rec.transport ?? '–'],
    ['critical path', path.length ? path.join(' → ') : '–'],
  ];
  const stored = sessionStorage.getItem(`ensemble.response.${id}`);
  const findings = /** @type {any} */ (rec).findings;
  root.replaceChildren(
    h('h1', {}, ['Run ', h('span', { class: 'mono', text: id })]),
    h('table', { class: 'kv wide' }, figures.map(([k, v]) => h('tr', {}, [h('th', { text: k }), h('td', {}, [v])]))),
    rec.error ? h('p', { class: 'error', id: 'run-error', text: rec.error }) : '',
    rec.truncated ? h('p', { class: 'muted', text: `This record was shortened to fit the runs table${rec.stagesOmitted ? ` (${rec.stagesOmitted} stage lines left out)` : ''}.` }) : '',
    h('h2', { text: 'Waterfall' }),
    h('p', { class: 'muted', text: 'Each bar runs from the run\'s first item entering the stage\'s queue to its last item coming back; the hatched part is the longest wait in the queue. Times are offsets from the request\'s arrival.' }),
    h('div', { class: 'wf-box' }, [drawWaterfall(rec, view)]),
    h('h2', { text: 'Stages' }),
    stageTable(rec),
    Array.isArray(findings) && findings.length ? h('div', {}, [h('h2', { text: 'Findings' }), h('ul', {}, findings.map((f) => h('li', { text: typeof f === 'string' ? f : (f.message ?? JSON.stringify(f)) })))]) : '',
    stored ? responseBlock(JSON.parse(stored)) : '',
  );
  return () => undefined;
}

/** The record is durable before the response leaves, but a store replaying its journal may lag: retry a 404 briefly. */
async function fetchRun(id) {
  for (let i = 0; ; i++) {
    try {
      return await getJson(`/v2/runs/${enc(id)}`);
    } catch (e) {
      if (!(e instanceof HttpError) || e.status !== 404 || i >= 5) throw e;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

function stageTable(rec) {
  const cols = ['stage', 'items', 'batches', 'batch sizes', 'start', 'end', 'longest queue', 'compute', 'cold start', 'skipped', 'error'];
  return h('table', { class: 'runs', id: 'stage-table' }, [
    h('thead', {}, [h('tr', {}, cols.map((c) => h('th', { text: c })))]),
    h('tbody', {}, rec.stages.map((x) => h('tr', { 'data-stage': x.stage }, [
      h('td', { text: x.stage }),
      h('td', { class: 'num', text: String(x.items) }),
      h('td', { class: 'num', text: String(x.batches) }),
      h('td', { class: 'mono', text: x.batchSizes.join(' ') }),
      h('td', { class: 'num', text: x.startMs === undefined ? '–' : fmtMs(x.startMs) }),
      h('td', { class: 'num', text: x.endMs === undefined ? '–' : fmtMs(x.endMs) }),
      h('td', { class: 'num', text: fmtMs(x.queueWaitMs) }),
      h('td', { class: 'num', text: fmtMs(x.computeMs) }),
      h('td', { text: x.coldStart ? `yes${x.initMs !== undefined ? ` (init ${fmtMs(x.initMs)})` : ''}` : '' }),
      h('td', { class: 'num', text: x.skipped ? String(x.skipped) : '' }),
      h('td', { class: 'error', text: x.error ?? '' }),
    ]))),
  ]);
}

function responseBlock({ status, body }) {
  let text = body;
  try { text = JSON.stringify(JSON.parse(body), null, 1); } catch { /* binary or not JSON */ }
  return h('details', { class: 'response' }, [h('summary', { text: `The response this console received (HTTP ${status})` }), h('pre', { text: text.slice(0, 8000) })]);
}
