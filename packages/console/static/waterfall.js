// A run's waterfall: one row per stage on the run's time axis, the stage's
// span from its first item entering the queue (startMs) to its last item
// coming back (endMs), the longest queue wait shaded at its start. The
// critical path is the chain of stages the response waited on: from the
// stage that ended last, back through whichever of its producers ended last.

import { fmtMs, s, textWidth, ticks } from './dom.js';
import { stagePredecessors } from './graph.js';

/**
 * @typedef {{ stage: string, batches: number, batchSizes: number[], items: number, queueWaitMs: number,
 *   computeMs: number, coldStart: boolean, initMs?: number, skipped?: number, error?: string,
 *   startMs?: number, endMs?: number }} StageRunRecord
 * @typedef {{ id: string, pipeline: string, version: string, status: string, httpStatus: number,
 *   startedAt: string, durationMs: number, stages: StageRunRecord[], error?: string, transport?: string }} RunRecord
 */

const LABEL_W = 230;
const FIG_W = 250;
const ROW_H = 44;
const AXIS_H = 30;

/**
 * The stages of the critical path, last first. A function stage that runs
 * beside an ONNX stage has no line of its own in the record (`colocated`:
 * stage -> that ONNX stage, and whether it runs after the model); it is on
 * the path where that stage is: one run before the model ends when the model
 * starts, one run after it when the model ends. Among stages that end
 * together the later in `order` (the pipeline's) is the one the others fed.
 * @param {RunRecord} rec @param {Map<string, string[]>} preds
 * @param {Map<string, { stage: string, after: boolean }>} [colocated] @param {string[]} [order]
 * @returns {string[]}
 */
export function criticalPath(rec, preds, colocated = new Map(), order = []) {
  const timed = new Map(rec.stages.filter((x) => x.endMs !== undefined).map((x) => [x.stage, x]));
  /** @param {string} n @returns {number | undefined} */
  const endOf = (n) => {
    const own = timed.get(n);
    if (own) return own.endMs;
    const c = colocated.get(n);
    const model = c && timed.get(c.stage);
    return model ? (c.after ? model.endMs : model.startMs) : undefined;
  };
  const rank = (/** @type {string} */ n) => order.indexOf(n);
  /** @param {string[]} names */
  const latest = (names) => names.filter((n) => endOf(n) !== undefined)
    .sort((a, b) => endOf(b) - endOf(a) || rank(b) - rank(a))[0];
  let cur = latest([...new Set([...timed.keys(), ...colocated.keys()])]);
  const path = [];
  while (cur && !path.includes(cur)) {
    path.push(cur);
    cur = latest(preds.get(cur) ?? []);
  }
  return path;
}

/** Each function stage the view says runs beside an ONNX stage: that stage, and whether after its model. @param {import('./graph.js').PipelineView | undefined} view */
export function colocatedStages(view) {
  return new Map((view?.stages ?? []).flatMap((st) => (st.runsWith ? [[st.name, st.runsWith]] : [])));
}

/**
 * @param {RunRecord} rec
 * @param {import('./graph.js').PipelineView | undefined} view the pipeline as served now (order, kinds, lineage)
 * @param {number} [width]
 * @returns {SVGElement}
 */
export function drawWaterfall(rec, view, width = 1180) {
  const order = view ? view.stages.map((x) => x.name) : [];
  const rows = [...rec.stages].sort((a, b) => rank(a.stage) - rank(b.stage));
  function rank(n) { const i = order.indexOf(n); return i < 0 ? order.length : i; }
  const kind = new Map(view?.stages.map((x) => [x.name, x]) ?? []);
  const preds = view ? stagePredecessors(view) : new Map();
  const critical = new Set(criticalPath(rec, preds, colocatedStages(view), order));
  const level = (name) => {
    const st = kind.get(name);
    return st ? Math.max(0, ...Object.values(st.inputs).map((t) => view.levels[t] ?? 0)) : 0;
  };

  const plotW = width - LABEL_W - FIG_W;
  const span = Math.max(rec.durationMs, ...rows.map((r) => r.endMs ?? 0), 0.01);
  const X = (ms) => LABEL_W + (ms / span) * plotW;
  const height = AXIS_H + rows.length * ROW_H + 40;
  // The scale is on the element too, so a reader (or a test) can map a bar back to milliseconds.
  const svg = s('svg', {
    class: 'waterfall', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': `waterfall of run ${rec.id}`,
    'data-origin-x': LABEL_W, 'data-px-per-ms': plotW / span,
  });
  svg.append(s('defs', {}, [
    s('pattern', { id: 'queue-hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' }, [
      s('rect', { width: 6, height: 6, fill: '#fde68a' }), s('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#f59e0b', 'stroke-width': 2 }),
    ]),
  ]));

  // The time axis, with a grid line per tick.
  const axis = s('g', { class: 'axis' });
  for (const t of ticks(span, Math.max(3, Math.floor(plotW / 90)))) {
    axis.append(s('line', { x1: X(t), y1: AXIS_H - 6, x2: X(t), y2: height - 34, stroke: '#e2e8f0' }));
    axis.append(s('text', { x: X(t), y: AXIS_H - 12, 'text-anchor': 'middle', class: 'tick', text: fmtMs(t) }));
  }
  axis.append(s('text', { x: 12, y: AXIS_H - 12, class: 'axis-title', text: 'stage' }));
  axis.append(s('text', { x: LABEL_W + plotW + 12, y: AXIS_H - 12, class: 'axis-title', text: 'queue · compute · batches' }));
  svg.append(axis);

  rows.forEach((r, i) => {
    const y = AXIS_H + i * ROW_H;
    const st = kind.get(r.stage);
    const colour = r.error ? '#dc2626' : st?.kind === 'onnx' ? '#0f766e' : '#4338ca';
    const onPath = critical.has(r.stage);
    const g = s('g', {
      class: `wf-row${onPath ? ' critical' : ''}`, 'data-stage': r.stage, 'data-critical': String(onPath),
      'data-start-ms': r.startMs ?? '', 'data-end-ms': r.endMs ?? '', 'data-queue-ms': r.queueWaitMs, 'data-compute-ms': r.computeMs,
      'data-items': r.items, 'data-batches': r.batches,
    });
    if (i % 2 === 0) g.append(s('rect', { x: 0, y, width, height: ROW_H, fill: '#f8fafc' }));
    g.append(s('text', { x: 12, y: y + 18, class: 'wf-name', text: `${onPath ? '● ' : ''}${r.stage}`, fill: onPath ? '#b91c1c' : '#0f172a' }));
    const lvl = level(r.stage);
    const sub = r.items || !r.skipped
      ? `${r.items} item${r.items === 1 ? '' : 's'} · ${r.batches} batch${r.batches === 1 ? '' : 'es'}${lvl > 0 ? ' (fan-out items)' : ''}`
      : '';
    g.append(s('text', { x: 12, y: y + 34, class: 'wf-sub', text: [sub, r.skipped ? `${r.skipped} skipped` : ''].filter(Boolean).join(' · ') }));

    if (r.startMs !== undefined && r.endMs !== undefined) {
      const qEnd = Math.min(r.endMs, r.startMs + r.queueWaitMs);
      const barY = y + 9;
      const barH = 22;
      g.append(s('rect', { x: X(r.startMs), y: barY, width: Math.max(1, X(qEnd) - X(r.startMs)), height: barH, fill: 'url(#queue-hatch)', 'data-part': 'queue' }));
      g.append(s('rect', {
        x: X(qEnd), y: barY, width: Math.max(1.5, X(r.endMs) - X(qEnd)), height: barH, fill: colour, rx: 2, 'data-part': 'work',
        stroke: onPath ? '#b91c1c' : 'none', 'stroke-width': onPath ? 2 : 0,
      }));
      const spanText = fmtMs(r.endMs - r.startMs);
      const after = X(r.endMs) + 6;
      const fits = after + textWidth(spanText, 11) < LABEL_W + plotW;
      g.append(s('text', { x: fits ? after : X(r.startMs) - 6, y: barY + 15, 'text-anchor': fits ? 'start' : 'end', class: 'wf-span', text: spanText }));
      if (r.coldStart) g.append(s('text', { x: X(r.startMs), y: barY - 2, class: 'wf-cold', text: `cold start${r.initMs !== undefined ? ` (init ${fmtMs(r.initMs)})` : ''}` }));
    } else if (r.skipped) {
      g.append(s('text', { x: LABEL_W + 6, y: y + 25, class: 'wf-sub', text: 'skipped by its condition' }));
    } else {
      g.append(s('text', { x: LABEL_W + 6, y: y + 25, class: 'wf-sub', text: 'no stage times in this record' }));
    }

    const fx = LABEL_W + plotW + 12;
    g.append(s('text', { x: fx, y: y + 18, class: 'wf-fig', text: `queue ${fmtMs(r.queueWaitMs)} · compute ${fmtMs(r.computeMs)}` }));
    // The batches this request's items rode in, side by side, their heights the batch sizes.
    const most = Math.max(1, ...r.batchSizes);
    const shown = r.batchSizes.slice(0, 40);
    const bw = Math.max(3, Math.min(12, Math.floor((FIG_W - 70) / Math.max(1, shown.length)) - 2));
    shown.forEach((n, j) => {
      const hgt = 3 + (n / most) * 11;
      g.append(s('rect', { x: fx + j * (bw + 2), y: y + 38 - hgt, width: bw, height: hgt, fill: colour, opacity: 0.75, 'data-batch-size': n }));
    });
    if (r.batchSizes.length) {
      g.append(s('text', { x: fx + shown.length * (bw + 2) + 4, y: y + 37, class: 'wf-sub', text: sizesText(r.batchSizes) }));
    }
    if (r.error) g.append(s('title', { text: r.error }));
    svg.append(g);
  });

  // The response: what follows the last stage is joining outputs, encoding and the run record.
  const endY = AXIS_H + rows.length * ROW_H;
  svg.append(s('line', { x1: X(rec.durationMs), y1: AXIS_H - 4, x2: X(rec.durationMs), y2: endY + 6, stroke: '#0f172a', 'stroke-dasharray': '3 3' }));
  svg.append(s('text', { x: Math.min(X(rec.durationMs), LABEL_W + plotW - 4), y: endY + 20, 'text-anchor': 'end', class: 'wf-sub', text: `response at ${fmtMs(rec.durationMs)}` }));
  const legendY = height - 10;
  svg.append(s('g', { class: 'legend' }, [
    s('rect', { x: 12, y: legendY - 10, width: 18, height: 12, fill: 'url(#queue-hatch)' }),
    s('text', { x: 36, y: legendY, class: 'legend-text', text: 'longest queue wait' }),
    s('rect', { x: 170, y: legendY - 10, width: 18, height: 12, fill: '#0f766e' }),
    s('text', { x: 194, y: legendY, class: 'legend-text', text: 'ONNX stage' }),
    s('rect', { x: 290, y: legendY - 10, width: 18, height: 12, fill: '#4338ca' }),
    s('text', { x: 314, y: legendY, class: 'legend-text', text: 'function stage' }),
    s('text', { x: 430, y: legendY, class: 'legend-text', fill: '#b91c1c', text: '● critical path (outlined)' }),
  ]));
  return svg;
}

/** "4 × 4, 2": batch sizes with repeats folded. */
function sizesText(sizes) {
  const parts = [];
  for (let i = 0; i < sizes.length;) {
    let j = i;
    while (j < sizes.length && sizes[j] === sizes[i]) j++;
    parts.push(j - i > 1 ? `${j - i}×${sizes[i]}` : String(sizes[i]));
    i = j;
  }
  const t = parts.join(', ');
  return t.length > 22 ? `${t.slice(0, 21)}…` : t;
}
