// /console/live: throughput, p50/p99 latency, queue depth per stage and
// batch sizes per stage over the last five minutes (see live-sampler.js for
// where each figure comes from).

import { getJson } from './api.js';
import { h } from './dom.js';
import { distributionChart, lineChart, PALETTE } from './charts.js';
import { history, subscribe, WINDOW_MS } from './live-sampler.js';
import { navigate } from './router.js';

/** @param {HTMLElement} root @returns {Promise<() => void>} */
export async function liveView(root) {
  const { models } = await getJson('/v2/models');
  const q = new URLSearchParams(location.search);
  const chosen = q.get('pipeline') ?? models[0]?.name ?? '';
  const picker = h('select', { name: 'pipeline' }, models.map((m) => {
    const o = h('option', { value: m.name, text: m.name });
    if (m.name === chosen) o.setAttribute('selected', '');
    return o;
  }));
  picker.addEventListener('change', () => navigate(`/console/live?pipeline=${encodeURIComponent(/** @type {HTMLSelectElement} */ (picker).value)}`));
  const banner = h('p', { class: 'banner', id: 'metrics-state' });
  const grid = h('div', { class: 'charts' });
  root.replaceChildren(h('h1', {}, ['Live ', h('label', { class: 'inline' }, ['pipeline ', picker])]), banner, grid);

  const draw = () => {
    const last = history[history.length - 1];
    if (!last) { banner.textContent = 'Sampling…'; return; }
    banner.textContent = last.metrics === 'present'
      ? `Reading /metrics (${last.series} samples) every 2 s; latency from run records.`
      : last.metrics === 'absent'
        ? 'No metrics yet: this gateway serves no /metrics. Throughput, latency and batch sizes below come from recent run records.'
        : '/metrics did not answer; figures below come from recent run records.';
    banner.dataset.metrics = last.metrics;
    const now = last.t;
    const rows = history.map((x) => x.perPipeline[chosen]).filter(Boolean);
    const series = (name, f, colour, dashed) => ({ name, colour, dashed, points: rows.filter((r) => f(r) !== undefined).map((r) => [r.t, f(r)]) });
    const stages = Object.keys(rows[rows.length - 1]?.queue ?? {});
    const batches = rows[rows.length - 1]?.batches ?? {};
    const w = Math.max(420, Math.min(640, Math.floor((root.clientWidth - 24) / 2)));
    grid.replaceChildren(
      lineChart({
        title: 'Throughput (requests/s)', note: last.metrics === 'present' ? 'from /metrics request counters' : 'from run records, 10 s window',
        series: [series('succeeded', (r) => r.rps, '#059669'), series('failed', (r) => r.failedRps, '#dc2626', true)], windowMs: WINDOW_MS, now, width: w,
      }),
      lineChart({
        title: 'Latency p50 / p99 (ms)', note: 'from run records ending in the last 30 s (nearest rank)',
        series: [series('p50', (r) => r.p50, '#2563eb'), series('p99', (r) => r.p99, '#7c3aed')], windowMs: WINDOW_MS, now, width: w,
      }),
      lineChart({
        title: 'Queue depth per stage (items)', note: 'from the console API, all requests',
        // The four stages that queued most in the window: more lines would not be read.
        series: stages.map((st, i) => series(st, (r) => r.queue[st], PALETTE[i % PALETTE.length]))
          .map((x) => ({ x, peak: Math.max(0, ...x.points.map(([, v]) => v)) })).filter((e) => e.peak > 0)
          .sort((a, b) => b.peak - a.peak).slice(0, 4).map((e) => e.x),
        windowMs: WINDOW_MS, now, width: w, empty: 'every queue empty in this window',
      }),
      distributionChart({
        title: 'Batch sizes per stage', categoryName: 'batch size',
        note: last.metrics === 'present' && Object.keys(batches).length ? 'from the /metrics histogram, this window' : 'from run records of the last 60 s (a shared batch counts once per request)',
        rows: stages.filter((st) => (batches[st] ?? []).length).map((st) => ({ name: st, parts: batches[st] })),
        width: w, empty: 'no batches in this window',
      }),
    );
  };
  draw();
  return subscribe(draw);
}
