// Small SVG charts for the live view: lines over the last minutes, and bars.

import { s, ticks } from './dom.js';

export const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#475569', '#ea580c', '#4f46e5', '#0d9488'];

/**
 * @typedef {{ name: string, colour?: string, points: [number, number][], dashed?: boolean }} Series
 */

/**
 * Lines over time, the newest on the right; `now - windowMs` to `now`.
 * @param {{ title: string, note?: string, unit?: string, series: Series[], windowMs: number, now: number, width?: number, height?: number, empty?: string }} o
 */
export function lineChart(o) {
  const width = o.width ?? 560;
  const height = o.height ?? 230;
  const L = 52; const R = 12; const T = 44; const B = 26;
  const pw = width - L - R;
  const ph = height - T - B;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, 'data-chart': o.title });
  svg.append(s('text', { x: 8, y: 16, class: 'chart-title', text: o.title }));
  if (o.note) svg.append(s('text', { x: 8, y: 31, class: 'chart-note', text: o.note }));
  const from = o.now - o.windowMs;
  const visible = o.series.map((x) => ({ ...x, points: x.points.filter(([t]) => t >= from) })).filter((x) => x.points.length);
  const max = Math.max(0, ...visible.flatMap((x) => x.points.map(([, v]) => v)));
  const yt = ticks(max > 0 ? max * 1.1 : 1, 4);
  const top = yt[yt.length - 1] || 1;
  const X = (t) => L + ((t - from) / o.windowMs) * pw;
  const Y = (v) => T + ph - (v / top) * ph;
  for (const v of yt) {
    svg.append(s('line', { x1: L, y1: Y(v), x2: L + pw, y2: Y(v), stroke: '#e2e8f0' }));
    svg.append(s('text', { x: L - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'tick', text: fmt(v) }));
  }
  const minutes = o.windowMs / 60000;
  for (let m = 0; m <= minutes; m++) {
    const t = o.now - m * 60000;
    svg.append(s('text', { x: X(t), y: height - 8, 'text-anchor': 'middle', class: 'tick', text: m === 0 ? 'now' : `-${m} min` }));
  }
  if (o.unit) svg.append(s('text', { x: L, y: T - 4, class: 'tick', text: o.unit }));
  if (!visible.length) {
    svg.append(s('text', { x: L + pw / 2, y: T + ph / 2, 'text-anchor': 'middle', class: 'chart-empty', text: o.empty ?? 'no data yet' }));
    return svg;
  }
  visible.forEach((x, i) => {
    const colour = x.colour ?? PALETTE[i % PALETTE.length];
    const d = x.points.map(([t, v], j) => `${j ? 'L' : 'M'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join(' ');
    svg.append(s('path', { d, fill: 'none', stroke: colour, 'stroke-width': 2, 'stroke-dasharray': x.dashed ? '5 3' : undefined, 'data-series': x.name }));
  });
  // Legend at the top right, one row.
  let lx = width - R;
  for (let i = visible.length - 1; i >= 0; i--) {
    const x = visible[i];
    const colour = x.colour ?? PALETTE[i % PALETTE.length];
    const last = x.points[x.points.length - 1][1];
    const text = `${x.name} ${fmt(last)}`;
    const w = text.length * 6.4 + 18;
    lx -= w;
    svg.append(s('line', { x1: lx, y1: 27, x2: lx + 12, y2: 27, stroke: colour, 'stroke-width': 3, 'stroke-dasharray': x.dashed ? '5 3' : undefined }));
    svg.append(s('text', { x: lx + 16, y: 31, class: 'legend-text', text }));
  }
  return svg;
}

/**
 * Bars: one group per label, one bar per series.
 * @param {{ title: string, note?: string, labels: string[], series: { name: string, values: number[], colour?: string }[], width?: number, height?: number, empty?: string, xTitle?: string }} o
 */
export function barChart(o) {
  const width = o.width ?? 560;
  const height = o.height ?? 230;
  const L = 52; const R = 12; const T = 44; const B = 34;
  const pw = width - L - R;
  const ph = height - T - B;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, 'data-chart': o.title });
  svg.append(s('text', { x: 8, y: 16, class: 'chart-title', text: o.title }));
  if (o.note) svg.append(s('text', { x: 8, y: 31, class: 'chart-note', text: o.note }));
  const max = Math.max(0, ...o.series.flatMap((x) => x.values));
  if (!o.labels.length || max === 0) {
    svg.append(s('text', { x: L + pw / 2, y: T + ph / 2, 'text-anchor': 'middle', class: 'chart-empty', text: o.empty ?? 'no data yet' }));
    return svg;
  }
  const yt = ticks(max * 1.1, 4);
  const top = yt[yt.length - 1] || 1;
  const Y = (v) => T + ph - (v / top) * ph;
  for (const v of yt) {
    svg.append(s('line', { x1: L, y1: Y(v), x2: L + pw, y2: Y(v), stroke: '#e2e8f0' }));
    svg.append(s('text', { x: L - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'tick', text: fmt(v) }));
  }
  const group = pw / o.labels.length;
  const bw = Math.max(2, Math.min(28, (group - 6) / Math.max(1, o.series.length)));
  o.labels.forEach((label, i) => {
    const gx = L + i * group + (group - bw * o.series.length) / 2;
    o.series.forEach((x, j) => {
      const v = x.values[i] ?? 0;
      if (v > 0) svg.append(s('rect', { x: gx + j * bw, y: Y(v), width: bw - 1, height: T + ph - Y(v), fill: x.colour ?? PALETTE[j % PALETTE.length] }));
    });
    if (o.labels.length <= 24 || i % Math.ceil(o.labels.length / 24) === 0) {
      svg.append(s('text', { x: L + i * group + group / 2, y: T + ph + 14, 'text-anchor': 'middle', class: 'tick', text: label }));
    }
  });
  if (o.xTitle) svg.append(s('text', { x: L + pw / 2, y: height - 4, 'text-anchor': 'middle', class: 'tick', text: o.xTitle }));
  let lx = width - R;
  for (let i = o.series.length - 1; i >= 0; i--) {
    const x = o.series[i];
    const w = x.name.length * 6.4 + 18;
    lx -= w;
    svg.append(s('rect', { x: lx, y: 22, width: 11, height: 10, fill: x.colour ?? PALETTE[i % PALETTE.length] }));
    svg.append(s('text', { x: lx + 15, y: 31, class: 'legend-text', text: x.name }));
  }
  return svg;
}

function fmt(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k`;
  if (v >= 10 || Number.isInteger(v)) return String(Math.round(v));
  return v.toFixed(v >= 1 ? 1 : 2);
}
