// /console/pipelines/{name}: the DAG with each stage's settings and live
// state (refreshed every 2 s), the selected stage's details, a request
// form, and the pipeline's recent runs.

import { enc, getJson } from './api.js';
import { fmtMs, fmtTime, h } from './dom.js';
import { drawDag } from './dag.js';
import { functionPlace } from './graph.js';
import { requestForm } from './form.js';
import { navigate } from './router.js';

const REFRESH_MS = 2000;

/** @param {HTMLElement} root @param {string} name @returns {Promise<() => void>} */
export async function pipelineView(root, name) {
  const [view, meta] = await Promise.all([getJson(`/console/api/pipelines/${enc(name)}`), getJson(`/v2/models/${enc(name)}`)]);
  let current = view;
  let selected = view.stages[0]?.name;
  /** @type {any[]} */
  let runs = [];
  const dagBox = h('div', { class: 'dag-box' });
  const side = h('aside', { class: 'stage-panel' });
  const runsBox = h('div');
  root.replaceChildren(
    h('h1', {}, [name, ' ', h('span', { class: 'muted', text: `v${view.version}` }), ' ', h('span', { class: `badge ${view.ready ? 'ok' : 'bad'}`, id: 'ready', text: view.ready ? 'ready' : 'not ready' })]),
    view.description ? h('p', { class: 'desc', text: view.description }) : '',
    view.reason ? h('p', { class: 'error', text: view.reason }) : '',
    h('div', { class: 'pipeline-layout' }, [dagBox, h('div', { class: 'side' }, [side, requestForm(meta, (id) => navigate(`/console/runs/${id}`))])]),
    h('h2', { text: 'Recent runs' }),
    runsBox,
  );

  const draw = () => {
    dagBox.replaceChildren(drawDag(current, { selected, onSelect: (st) => { selected = st; draw(); } }));
    side.replaceChildren(stagePanel(current, selected, runs));
  };
  const refreshRuns = async () => {
    runs = (await getJson(`/v2/models/${enc(name)}/runs?limit=50`)).runs;
    runsBox.replaceChildren(runsTable(runs.slice(0, 10)));
  };
  draw();
  await refreshRuns().catch(() => undefined);
  draw();
  let stopped = false;
  const timer = setInterval(async () => {
    try {
      current = await getJson(`/console/api/pipelines/${enc(name)}`);
      await refreshRuns();
      if (!stopped) draw();
    } catch { /* the next tick tries again */ }
  }, REFRESH_MS);
  return () => { stopped = true; clearInterval(timer); };
}

/** @param {import('./graph.js').PipelineView} view @param {string | undefined} name @param {any[]} runs */
function stagePanel(view, name, runs) {
  const st = view.stages.find((x) => x.name === name);
  if (!st) return h('p', { class: 'muted', text: 'Click a stage for its details.' });
  const lines = runs.flatMap((r) => r.stages.filter((x) => x.stage === st.name));
  const cold = lines.filter((x) => x.coldStart).length;
  const inputs = Object.entries(st.inputs).map(([k, v]) => (k === v ? v : `${k} ← ${v}`)).join(', ');
  const outputs = Object.entries(st.outputs).map(([k, v]) => (k === v ? v : `${k} → ${v}`)).join(', ');
  const mean = (f) => lines.length ? lines.reduce((a, x) => a + f(x), 0) / lines.length : NaN;
  /** @type {[string, string][]} */
  const rows = [
    ['kind', st.kind === 'onnx' ? 'ONNX (worker sessions)' : `function${st.fanout ? ', fan-out (one item in, many out)' : ''}`],
    ['reads', inputs],
    ['writes', outputs],
    ...(st.when ? [['runs when', `${st.when.tensor} is true; otherwise ${Object.entries(st.when.otherwise).map(([k, v]) => `${k} = ${v}`).join(', ')}`]] : []),
    ['batch', `max ${st.batch.maxSize} items, waits ≤ ${st.batch.maxDelayMs} ms to fill, queue ≤ ${st.batch.maxQueue}`],
    ['scale', st.kind === 'onnx' ? `${st.scale.instances} instance${st.scale.instances === 1 ? '' : 's'} × ${st.scale.threads} thread${st.scale.threads === 1 ? '' : 's'}, ${st.scale.memoryMb} MB on Lambda` : st.runsWith ? `${functionPlace(st)} (in its worker process or Lambda function)` : 'in the gateway process'],
    ['queued now', String(st.live.queued)],
    ['batches running', String(st.live.inFlight)],
    ...(st.live.workers !== undefined ? [['workers up', `${st.live.workers} of ${st.scale.instances}`]] : []),
    ['state', st.live.ready ? 'ready' : `down: ${st.live.reason ?? 'not ready'}`],
    [`last ${runs.length} runs`, lines.length ? `cold starts ${cold}, mean queue ${fmtMs(mean((x) => x.queueWaitMs))}, mean compute ${fmtMs(mean((x) => x.computeMs))}` : 'none yet'],
  ];
  return h('div', { 'data-stage-panel': st.name }, [
    h('h3', { text: st.name }),
    h('table', { class: 'kv' }, rows.map(([k, v]) => h('tr', {}, [h('th', { text: k }), h('td', { text: v })]))),
  ]);
}

/** @param {any[]} runs */
export function runsTable(runs, withPipeline = false) {
  if (!runs.length) return h('p', { class: 'muted', text: 'No runs yet.' });
  return h('table', { class: 'runs' }, [
    h('thead', {}, [h('tr', {}, ['started', ...(withPipeline ? ['pipeline'] : []), 'status', 'HTTP', 'duration', 'stages', 'run'].map((t) => h('th', { text: t })))]),
    h('tbody', {}, runs.map((r) => h('tr', { 'data-run': r.id }, [
      h('td', { text: fmtTime(r.startedAt) }),
      ...(withPipeline ? [h('td', {}, [h('a', { href: `/console/pipelines/${enc(r.pipeline)}`, text: r.pipeline })])] : []),
      h('td', {}, [h('span', { class: `badge ${r.status === 'succeeded' ? 'ok' : 'bad'}`, text: r.status })]),
      h('td', { text: String(r.httpStatus) }),
      h('td', { class: 'num', text: fmtMs(r.durationMs) }),
      h('td', { class: 'num', text: String(r.stages.length) }),
      h('td', {}, [h('a', { href: `/console/runs/${r.id}`, class: 'mono', text: r.id.slice(0, 8) })]),
    ]))),
  ]);
}
