// What the live charts plot, sampled every 2 s while the live view is open
// and kept for the tab's life (the server keeps no history for the console):
// - throughput: /metrics request counters (nv_inference_request_success and
//   _failure) differenced over time; without /metrics, run records per second;
// - p50 / p99 latency: recent run records' durations (the last 30 s of them);
// - queue depth per stage: the console API's live state;
// - batch sizes per stage: a /metrics batch size histogram, differenced from
//   the first sample in the window; without one, recent run records' batch sizes.

import { enc, getJson, request } from './api.js';
import { buckets, findHistogram, parsePrometheus, total } from './prom.js';

export const SAMPLE_MS = 2000;
export const WINDOW_MS = 5 * 60e3;
const LATENCY_WINDOW_MS = 30e3;
const RATE_WINDOW_MS = 10e3;

/**
 * @typedef {{ t: number, rps?: number, failedRps?: number, p50?: number, p99?: number, queue: Record<string, number>,
 *   batches?: Record<string, [number, number][]> }} PipelineSample
 * @typedef {{ t: number, metrics: 'present' | 'absent' | 'error', series: number, perPipeline: Record<string, PipelineSample> }} Sample
 */

/** @type {Sample[]} */
export const history = [];
/** @type {Set<() => void>} */
const listeners = new Set();
let timer;
/** @type {Map<string, { t: number, ok: number, failed: number }>} */
const lastCounts = new Map();
/** @type {{ t: number, samples: import('./prom.js').Sample[] }[]} */
const snapshots = [];

/** Starts sampling (once) and calls `fn` after each sample; returns how to stop listening. */
export function subscribe(fn) {
  listeners.add(fn);
  if (!timer) { void tick(); timer = setInterval(tick, SAMPLE_MS); }
  return () => {
    listeners.delete(fn);
    if (!listeners.size) { clearInterval(timer); timer = undefined; }
  };
}

async function tick() {
  const t = Date.now();
  /** @type {Sample} */
  const sample = { t, metrics: 'absent', series: 0, perPipeline: {} };
  let samples;
  try {
    const res = await request('/metrics');
    if (res.ok) {
      samples = parsePrometheus(await res.text());
      sample.metrics = 'present';
      sample.series = samples.length;
      snapshots.push({ t, samples });
      while (snapshots.length && snapshots[0].t < t - WINDOW_MS) snapshots.shift();
    } else if (res.status !== 404) sample.metrics = 'error';
  } catch { sample.metrics = 'error'; }
  let models = [];
  try { models = (await getJson('/v2/models')).models; } catch { /* keep going with none */ }
  await Promise.all(models.map(async (m) => {
    const [view, runs] = await Promise.all([
      getJson(`/console/api/pipelines/${enc(m.name)}`).catch(() => undefined),
      getJson(`/v2/models/${enc(m.name)}/runs?limit=200`).then((b) => b.runs, () => []),
    ]);
    sample.perPipeline[m.name] = pipelineSample(m.name, t, view, runs, samples);
  }));
  history.push(sample);
  while (history.length && history[0].t < t - WINDOW_MS) history.shift();
  for (const fn of listeners) fn();
}

function pipelineSample(name, t, view, runs, samples) {
  /** @type {PipelineSample} */
  const out = { t, queue: {} };
  for (const st of view?.stages ?? []) out.queue[st.name] = st.live.queued;
  const ended = (r) => Date.parse(r.startedAt) + r.durationMs;
  // Throughput from the counters when they exist.
  const ok = samples && total(samples, 'nv_inference_request_success', { model: name });
  if (samples && ok !== undefined) {
    const failed = total(samples, 'nv_inference_request_failure', { model: name }) ?? 0;
    const prev = lastCounts.get(name);
    if (prev && t > prev.t) {
      out.rps = Math.max(0, (ok - prev.ok) / ((t - prev.t) / 1000));
      out.failedRps = Math.max(0, (failed - prev.failed) / ((t - prev.t) / 1000));
    }
    lastCounts.set(name, { t, ok, failed });
  } else {
    const recent = runs.filter((r) => ended(r) > t - RATE_WINDOW_MS);
    out.rps = recent.filter((r) => r.status === 'succeeded').length / (RATE_WINDOW_MS / 1000);
    out.failedRps = recent.filter((r) => r.status !== 'succeeded').length / (RATE_WINDOW_MS / 1000);
  }
  const durations = runs.filter((r) => ended(r) > t - LATENCY_WINDOW_MS).map((r) => r.durationMs).sort((a, b) => a - b);
  if (durations.length) {
    out.p50 = quantile(durations, 0.5);
    out.p99 = quantile(durations, 0.99);
  }
  out.batches = batchSizes(name, view, runs, samples, t);
  return out;
}

/** Nearest-rank quantile of sorted values. */
export function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Per stage: [batch size, batches] pairs. */
function batchSizes(name, view, runs, samples, t) {
  /** @type {Record<string, [number, number][]>} */
  const out = {};
  const hist = samples && findHistogram(samples, /batch_size/);
  if (hist && snapshots.length) {
    const first = snapshots[0].samples;
    for (const st of view?.stages ?? []) {
      const where = { model: `${name}.${st.name}` };
      const now = buckets(samples, hist, where);
      if (!now.length) continue;
      const before = new Map(buckets(first, hist, where));
      // Cumulative buckets -> batches per size bound, since the first snapshot in the window.
      let prev = 0;
      const pairs = [];
      for (const [le, c] of now) {
        const d = c - (before.get(le) ?? 0);
        if (Number.isFinite(le) && d - prev > 0) pairs.push([le, d - prev]);
        prev = d;
      }
      out[st.name] = pairs;
    }
    return out;
  }
  for (const r of runs) {
    if (Date.parse(r.startedAt) < t - 60e3) continue;
    for (const x of r.stages) {
      const m = new Map(out[x.stage] ?? []);
      for (const n of x.batchSizes) m.set(n, (m.get(n) ?? 0) + 1);
      out[x.stage] = [...m].sort((a, b) => a[0] - b[0]);
    }
  }
  return out;
}
