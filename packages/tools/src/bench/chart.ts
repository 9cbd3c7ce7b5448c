/** A small hand-written SVG line chart: panels of series against concurrency (log scale). */

export interface Series {
  name: string;
  color: string;
  points: [x: number, y: number][];
  dashed?: boolean;
  /** A sequential system measured at one point: drawn as a horizontal reference line across the panel. */
  reference?: boolean;
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
}

const W = 460;
/** Plot area height; the legend below it grows with the number of series. */
const PLOT_H = 190;
const M = { left: 64, right: 16, top: 34 };
const LEGEND_LINE = 16;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 1, 2, 5 x 10^k steps giving about `n` ticks up to max. */
export function niceTicks(max: number, n = 5): number[] {
  if (!(max > 0)) return [0];
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v <= max * 1.0001; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

function label(v: number): string {
  if (v >= 10_000) return `${Math.round(v / 1000)}k`;
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return Number(v.toPrecision(3)).toString();
}

function panelHeight(p: Panel): number {
  return M.top + PLOT_H + 44 + p.series.length * LEGEND_LINE;
}

function panel(p: Panel, ox: number, oy: number): string {
  const pts = p.series.flatMap((s) => s.points);
  const xs = [...new Set(pts.map(([x]) => x))].sort((a, b) => a - b);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs, xMin * 2);
  const yTicks = niceTicks(Math.max(...pts.map(([, y]) => y).filter(Number.isFinite), 0));
  const yMax = yTicks[yTicks.length - 1] || 1;
  const iw = W - M.left - M.right;
  const ih = PLOT_H;
  const sx = (x: number) => ox + M.left + (xMax === xMin ? iw / 2 : ((Math.log(x) - Math.log(xMin)) / (Math.log(xMax) - Math.log(xMin))) * iw);
  const sy = (y: number) => oy + M.top + ih - (Math.min(y, yMax) / yMax) * ih;
  const g: string[] = [];
  g.push(`<text x="${ox + W / 2}" y="${oy + 20}" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  for (const t of yTicks) {
    g.push(`<line x1="${ox + M.left}" x2="${ox + W - M.right}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e5e5"/>`);
    g.push(`<text x="${ox + M.left - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${label(t)}</text>`);
  }
  for (const x of xs) {
    g.push(`<line x1="${sx(x)}" x2="${sx(x)}" y1="${oy + M.top}" y2="${oy + M.top + ih}" stroke="#f0f0f0"/>`);
    g.push(`<text x="${sx(x)}" y="${oy + M.top + ih + 16}" text-anchor="middle" font-size="11">${x}</text>`);
  }
  g.push(`<line x1="${ox + M.left}" x2="${ox + W - M.right}" y1="${oy + M.top + ih}" y2="${oy + M.top + ih}" stroke="#333"/>`);
  g.push(`<line x1="${ox + M.left}" x2="${ox + M.left}" y1="${oy + M.top}" y2="${oy + M.top + ih}" stroke="#333"/>`);
  g.push(`<text x="${ox + M.left + iw / 2}" y="${oy + M.top + ih + 32}" text-anchor="middle" font-size="11">concurrency (requests in flight)</text>`);
  g.push(`<text transform="translate(${ox + 14},${oy + M.top + ih / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(p.yLabel)}</text>`);
  p.series.forEach((s, i) => {
    const dash = s.dashed || s.reference ? ' stroke-dasharray="6 4"' : '';
    const line = s.reference && s.points.length === 1
      ? [[xMin, s.points[0][1]], [xMax, s.points[0][1]]] as [number, number][]
      : [...s.points].sort((a, b) => a[0] - b[0]);
    const finite = line.filter(([, y]) => Number.isFinite(y));
    if (finite.length > 1) g.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${finite.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of s.points) if (Number.isFinite(y)) g.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${s.color}"><title>${esc(`${s.name}: ${label(y)} at ${x}`)}</title></circle>`);
    const lx = ox + M.left;
    const ly = oy + M.top + ih + 50 + i * LEGEND_LINE;
    g.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    g.push(`<text x="${lx + 24}" y="${ly}" font-size="11">${esc(s.name)}</text>`);
  });
  return g.join('\n');
}

/** Panels laid out two per row. */
export function renderChart(panels: Panel[], title: string): string {
  const cols = Math.min(2, Math.max(1, panels.length));
  const rows = Math.ceil(panels.length / cols);
  const rowH = Array.from({ length: rows }, (_, r) => Math.max(...panels.slice(r * cols, r * cols + cols).map(panelHeight)));
  const rowY = rowH.map((_, r) => 30 + rowH.slice(0, r).reduce((a, b) => a + b, 0));
  const width = cols * W;
  const height = 30 + rowH.reduce((a, b) => a + b, 0);
  const body = panels.map((p, i) => panel(p, (i % cols) * W, rowY[Math.floor(i / cols)])).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="${width / 2}" y="20" text-anchor="middle" font-size="15">${esc(title)}</text>
${body}
</svg>
`;
}
