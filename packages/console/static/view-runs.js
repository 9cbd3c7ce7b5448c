// /console/runs: recent runs of every pipeline, newest first, filtered by
// pipeline, status and age. The filters are in the query string (?pipeline=ocr&status=failed&since=15m).

import { enc, getJson } from './api.js';
import { h } from './dom.js';
import { runsTable } from './view-pipeline.js';
import { navigate } from './router.js';

const SINCE = { '5m': 5 * 60e3, '15m': 15 * 60e3, '1h': 3600e3, '24h': 86400e3, all: Infinity };

/** @param {HTMLElement} root @returns {Promise<() => void>} */
export async function runsView(root) {
  const q = new URLSearchParams(location.search);
  const pipeline = q.get('pipeline') ?? '';
  const status = q.get('status') ?? '';
  const since = q.get('since') ?? 'all';
  const { models } = await getJson('/v2/models');
  const select = (name, value, options) => h('select', { name }, options.map(([v, t]) => {
    const o = h('option', { value: v, text: t });
    if (v === value) o.setAttribute('selected', '');
    return o;
  }));
  const form = h('form', { class: 'filters' }, [
    h('label', {}, ['pipeline ', select('pipeline', pipeline, [['', 'all'], ...models.map((m) => [m.name, m.name])])]),
    h('label', {}, ['status ', select('status', status, [['', 'all'], ['succeeded', 'succeeded'], ['failed', 'failed']])]),
    h('label', {}, ['started ', select('since', since, [['5m', 'last 5 minutes'], ['15m', 'last 15 minutes'], ['1h', 'last hour'], ['24h', 'last 24 hours'], ['all', 'any time']])]),
  ]);
  form.addEventListener('change', () => {
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(/** @type {HTMLFormElement} */ (form))) if (v && !(k === 'since' && v === 'all')) p.set(k, String(v));
    navigate(`/console/runs${p.size ? `?${p}` : ''}`);
  });
  const box = h('div', {}, [h('p', { class: 'muted', text: 'Loading…' })]);
  root.replaceChildren(h('h1', { text: 'Runs' }), form, box);
  const names = pipeline ? [pipeline] : models.map((m) => m.name);
  const lists = await Promise.all(names.map((n) => getJson(`/v2/models/${enc(n)}/runs?limit=100`).then((b) => b.runs, () => [])));
  const cutoff = Date.now() - (SINCE[since] ?? Infinity);
  const runs = lists.flat()
    .filter((r) => !status || r.status === status)
    .filter((r) => Date.parse(r.startedAt) >= cutoff)
    .sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1))
    .slice(0, 200);
  box.replaceChildren(h('p', { class: 'muted', text: `${runs.length} run${runs.length === 1 ? '' : 's'} (the latest 100 per pipeline, filtered)` }), runsTable(runs, true));
  return () => undefined;
}
