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
  const yt = ticks(max > 0 ? max * 1.05 : 1, 4, true);
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
 * One row per group (a stage): a bar split by category (batch size), each
 * part as wide as its share, the counts written at the right.
 * @param {{ title: string, note?: string, rows: { name: string, parts: [number, number][] }[], width?: number, empty?: string, categoryName?: string }} o
 */
export function distributionChart(o) {
  const width = o.width ?? 560;
  const rowH = 20;
  const T = 58; const L = 112; const R = 74;
  const height = Math.max(150, T + o.rows.length * rowH + 14);
  const pw = width - L - R;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, 'data-chart': o.title });
  svg.append(s('text', { x: 8, y: 16, class: 'chart-title', text: o.title }));
  if (o.note) svg.append(s('text', { x: 8, y: 31, class: 'chart-note', text: o.note }));
  const cats = [...new Set(o.rows.flatMap((r) => r.parts.map(([c]) => c)))].sort((a, b) => a - b);
  if (!cats.length) {
    svg.append(s('text', { x: width / 2, y: height / 2 + 10, 'text-anchor': 'middle', class: 'chart-empty', text: o.empty ?? 'no data yet' }));
    return svg;
  }
  const colour = (c) => PALETTE[cats.indexOf(c) % PALETTE.length];
  let lx = L;
  svg.append(s('text', { x: 8, y: 48, class: 'legend-text', text: o.categoryName ?? '' }));
  for (const c of cats) {
    svg.append(s('rect', { x: lx, y: 39, width: 11, height: 10, fill: colour(c) }));
    svg.append(s('text', { x: lx + 15, y: 48, class: 'legend-text', text: String(c) }));
    lx += 26 + String(c).length * 7;
  }
  o.rows.forEach((r, i) => {
    const y = T + i * rowH;
    const sum = r.parts.reduce((a, [, n]) => a + n, 0);
    svg.append(s('text', { x: L - 8, y: y + 13, 'text-anchor': 'end', class: 'legend-text', text: r.name }));
    let x = L;
    for (const [c, n] of r.parts) {
      const w = (n / sum) * pw;
      svg.append(s('rect', { x, y: y + 3, width: Math.max(0.5, w - 1), height: rowH - 6, fill: colour(c), 'data-category': c, 'data-count': n }, [s('title', { text: `${r.name}: ${n} batches of ${c}` })]));
      if (w > 26) svg.append(s('text', { x: x + w / 2, y: y + 13.5, 'text-anchor': 'middle', class: 'bar-text', text: String(n) }));
      x += w;
    }
    svg.append(s('text', { x: L + pw + 8, y: y + 13, class: 'tick', text: `${sum} batches` }));
  });
  return svg;
}

function fmt(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k`;
  if (v >= 10 || Number.isInteger(v)) return String(Math.round(v));
  return v.toFixed(v >= 1 ? 1 : 2);
}
