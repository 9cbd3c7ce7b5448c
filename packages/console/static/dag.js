// The pipeline's DAG drawn in SVG, top to bottom: pipeline inputs, stages in
// layers (a stage one row below the deepest stage it reads from), outputs.
// Edges are tensors: a curve between adjacent rows, or a lane on the right
// for an edge that skips rows, so no edge crosses a node.

import { s, textWidth } from './dom.js';
import { functionPlace, layers, pipelineGraph } from './graph.js';

/** @typedef {import('./graph.js').PipelineView} PipelineView */
/** @typedef {import('./graph.js').GraphNode} GraphNode */
/** @typedef {import('./graph.js').GraphEdge} GraphEdge */

const STAGE_W = 260;
const STAGE_H = 80;
const PILL_H = 30;
const ROW_GAP = 58;
const COL_GAP = 40;
const MARGIN = 24;

/** Edge colours by lineage depth: per request row, per item of a fan-out, of a second fan-out. */
export const LEVEL_COLOURS = ['#64748b', '#2563eb', '#9333ea', '#db2777'];
const CONDITION = '#d97706';

/**
 * @param {PipelineView} p
 * @param {{ selected?: string, onSelect?: (stage: string) => void }} [opts]
 * @returns {SVGElement}
 */
export function drawDag(p, opts = {}) {
  const { nodes, edges } = pipelineGraph(p);
  const layer = layers(nodes, edges);
  const rows = Math.max(...layer.values()) + 1;
  /** @type {GraphNode[][]} */
  const byRow = Array.from({ length: rows }, () => []);
  for (const n of nodes) byRow[layer.get(n.id) ?? 0].push(n);

  const size = (n) => n.kind === 'stage' ? { w: STAGE_W, h: STAGE_H } : { w: Math.max(96, textWidth(n.label, 13) + 36), h: PILL_H };
  /** @type {Map<string, { x: number, y: number, w: number, h: number }>} */
  const box = new Map();
  const rowWidth = byRow.map((r) => r.reduce((a, n) => a + size(n).w, 0) + COL_GAP * Math.max(0, r.length - 1));
  const inner = Math.max(...rowWidth);
  let y = MARGIN;
  for (let i = 0; i < rows; i++) {
    const row = byRow[i];
    // Keep a row in the order of what feeds it, so edges between rows do not cross needlessly.
    row.sort((a, b) => centre(a) - centre(b));
    let x = MARGIN + (inner - rowWidth[i]) / 2;
    const hMax = Math.max(...row.map((n) => size(n).h));
    for (const n of row) {
      const { w, h } = size(n);
      box.set(n.id, { x, y: y + (hMax - h) / 2, w, h });
      x += w + COL_GAP;
    }
    y += hMax + ROW_GAP;
  }
  function centre(n) {
    const from = edges.filter((e) => e.to === n.id).map((e) => box.get(e.from)).filter(Boolean);
    return from.length ? from.reduce((a, b) => a + b.x + b.w / 2, 0) / from.length : 0;
  }

  // Edges that skip rows get a vertical lane right of the nodes; lanes are reused once free.
  const long = edges.filter((e) => (layer.get(e.to) ?? 0) - (layer.get(e.from) ?? 0) > 1);
  long.sort((a, b) => (layer.get(a.from) ?? 0) - (layer.get(b.from) ?? 0));
  /** @type {{ end: number, width: number }[]} */
  const lanes = [];
  /** @type {Map<GraphEdge, number>} */
  const laneOf = new Map();
  for (const e of long) {
    const start = layer.get(e.from) ?? 0;
    let i = lanes.findIndex((l) => l.end < start);
    if (i < 0) { lanes.push({ end: -1, width: 0 }); i = lanes.length - 1; }
    lanes[i].end = layer.get(e.to) ?? 0;
    lanes[i].width = Math.max(lanes[i].width, textWidth(label(e), 11) + 22);
    laneOf.set(e, i);
  }
  const right = MARGIN + inner;
  const laneX = [];
  let lx = right + 28;
  for (const l of lanes) { laneX.push(lx); lx += l.width; }
  // Where lanes meet a node's right side: spread out, so two lanes never share a point.
  /** @type {Map<string, GraphEdge[]>} */
  const sideUsers = new Map();
  for (const e of long) for (const id of [e.from, e.to]) sideUsers.set(id, [...(sideUsers.get(id) ?? []), e]);
  const sideY = (id, e) => {
    const b = box.get(id);
    const users = sideUsers.get(id) ?? [];
    return b.y + (b.h * (users.indexOf(e) + 1)) / (users.length + 1);
  };

  const width = Math.max(lx, right) + MARGIN;
  const height = y - ROW_GAP + MARGIN + 34;
  const svg = s('svg', { class: 'dag', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': `DAG of ${p.name}` });
  svg.append(s('defs', {}, LEVEL_COLOURS.concat(CONDITION).map((c, i) => s('marker', {
    id: `arrow-${i}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse',
  }, [s('path', { d: 'M0,0 L10,5 L0,10 z', fill: c })]))));

  const edgeLayer = s('g', { class: 'edges' });
  const labelLayer = s('g', { class: 'edge-labels' });
  for (const e of edges) {
    const a = box.get(e.from);
    const b = box.get(e.to);
    if (!a || !b) continue;
    const colourIndex = e.kind === 'data' ? Math.min(e.level, LEVEL_COLOURS.length - 1) : LEVEL_COLOURS.length;
    const colour = e.kind === 'data' ? LEVEL_COLOURS[colourIndex] : CONDITION;
    let d;
    let lxy;
    let anchor = 'middle';
    const lane = laneOf.get(e);
    if (lane === undefined) {
      const x1 = a.x + a.w / 2;
      const y1 = a.y + a.h;
      const x2 = b.x + b.w / 2;
      const y2 = b.y;
      const my = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2 - 1}`;
      // A straight edge gets its label halfway; a slanted one nearer its target, where fanned edges are apart.
      const f = Math.abs(x2 - x1) > 1 ? 0.72 : 0.5;
      lxy = [x1 + (x2 - x1) * f, y1 + (y2 - y1) * f + 4];
    } else {
      const x = laneX[lane];
      const y1 = sideY(e.from, e);
      const y2 = sideY(e.to, e);
      const r = 8;
      d = `M${a.x + a.w},${y1} H${x - r} Q${x},${y1} ${x},${y1 + r} V${y2 - r} Q${x},${y2} ${x - r},${y2} H${b.x + b.w + 1}`;
      lxy = [x + 6, (y1 + y2) / 2 + 4];
      anchor = 'start';
    }
    edgeLayer.append(s('path', {
      d, fill: 'none', stroke: colour, 'stroke-width': e.level > 0 && e.kind === 'data' ? 2.2 : 1.6,
      'stroke-dasharray': e.kind === 'data' ? undefined : '6 4', 'marker-end': `url(#arrow-${colourIndex})`,
      'data-edge': `${e.from}->${e.to}`, 'data-kind': e.kind, 'data-tensors': e.tensors.join(','),
    }));
    labelLayer.append(s('text', { x: lxy[0], y: lxy[1], 'text-anchor': anchor, class: `edge-label ${e.kind}`, fill: colour, text: label(e) }));
  }
  svg.append(edgeLayer, labelLayer);

  for (const n of nodes) {
    const b = box.get(n.id);
    svg.append(n.kind === 'stage' ? stageNode(n.stage, b, opts) : pill(n, b));
  }
  svg.append(legend(MARGIN, height - 22, p));
  return svg;
}

/** @param {GraphEdge} e */
function label(e) {
  const t = e.tensors.join(', ');
  if (e.kind === 'condition') return `when ${t}`;
  if (e.kind === 'otherwise') return `otherwise ${t}`;
  return t;
}

function pill(n, b) {
  const input = n.kind === 'input';
  return s('g', { class: `io ${n.kind}`, 'data-node': n.id }, [
    s('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: b.h / 2, fill: input ? '#ecfdf5' : '#fff7ed', stroke: input ? '#059669' : '#ea580c', 'stroke-width': 1.5 }),
    s('text', { x: b.x + b.w / 2, y: b.y + b.h / 2 + 4.5, 'text-anchor': 'middle', class: 'io-label', text: `${input ? 'in' : 'out'}: ${n.label}` }),
  ]);
}

/**
 * @param {import('./graph.js').StageView} st
 * @param {{ x: number, y: number, w: number, h: number }} b
 * @param {{ selected?: string, onSelect?: (stage: string) => void }} opts
 */
function stageNode(st, b, opts) {
  const accent = st.kind === 'onnx' ? '#0f766e' : '#4338ca';
  const selected = opts.selected === st.name;
  const live = st.live;
  const g = s('g', {
    class: `stage${selected ? ' selected' : ''}`, 'data-node': `stage:${st.name}`, 'data-stage': st.name,
    'data-fanout': String(st.fanout), 'data-conditional': String(Boolean(st.when)), tabindex: 0,
    onclick: () => opts.onSelect?.(st.name),
  });
  // A fan-out stage turns one item into many: drawn as a stack of cards.
  if (st.fanout) {
    for (const off of [8, 4]) g.append(s('rect', { x: b.x + off, y: b.y + off, width: b.w, height: b.h, rx: 8, fill: '#eff6ff', stroke: '#93c5fd' }));
  }
  g.append(
    s('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: 8, fill: '#ffffff', stroke: selected ? '#0f172a' : accent, 'stroke-width': selected ? 2.5 : 1.4, 'stroke-dasharray': st.when ? '6 3' : undefined }),
    s('rect', { x: b.x, y: b.y, width: 6, height: b.h, rx: 3, fill: accent }),
    s('text', { x: b.x + 16, y: b.y + 20, class: 'stage-name', text: st.name }),
    s('text', { x: b.x + b.w - 10, y: b.y + 20, 'text-anchor': 'end', class: 'stage-kind', fill: accent, text: st.kind === 'onnx' ? 'ONNX' : 'function' }),
    s('text', { x: b.x + 16, y: b.y + 38, class: 'stage-meta', text: `batch ≤ ${st.batch.maxSize} · wait ${st.batch.maxDelayMs} ms · queue ≤ ${st.batch.maxQueue}` }),
    s('text', { x: b.x + 16, y: b.y + 54, class: 'stage-meta', text: st.kind === 'onnx' ? `${st.scale.instances} × ${st.scale.threads} thread${st.scale.threads === 1 ? '' : 's'} · ${st.scale.memoryMb} MB` : `runs ${functionPlace(st)}` }),
    s('text', {
      x: b.x + 16, y: b.y + 71, class: `stage-live${live.ready ? '' : ' down'}`, 'data-live': st.name,
      text: live.ready
        ? `queue ${live.queued} · running ${live.inFlight}${live.workers !== undefined ? ` · ${live.workers}/${st.scale.instances} up` : ''}`
        : `down: ${(live.reason ?? 'not ready').slice(0, 38)}`,
    }),
  );
  if (st.fanout) g.append(badge(b.x + b.w - 66, b.y + b.h - 24, 'fan-out', '#2563eb'));
  if (st.when) g.append(badge(b.x + b.w - Math.max(62, textWidth(`when ${st.when.tensor}`, 10) + 14) - (st.fanout ? 76 : 10), b.y + b.h - 24, `when ${st.when.tensor}`, CONDITION));
  g.append(s('title', { text: `${st.name}: click for details` }));
  return g;
}

function badge(x, y, text, colour) {
  const w = Math.max(56, textWidth(text, 10) + 14);
  return s('g', { class: 'badge' }, [
    s('rect', { x, y, width: w, height: 18, rx: 9, fill: colour }),
    s('text', { x: x + w / 2, y: y + 12.5, 'text-anchor': 'middle', fill: '#fff', class: 'badge-text', text }),
  ]);
}

function legend(x, y, p) {
  const depth = Math.max(0, ...Object.values(p.levels));
  const items = [['per request row', LEVEL_COLOURS[0], false]];
  for (let i = 1; i <= Math.min(depth, LEVEL_COLOURS.length - 1); i++) items.push([i === 1 ? 'per fan-out item' : `per item of fan-out ${i}`, LEVEL_COLOURS[i], false]);
  if (p.stages.some((st) => st.when)) items.push(['condition / otherwise', CONDITION, true]);
  const g = s('g', { class: 'legend' });
  let cx = x;
  for (const [text, colour, dashed] of items) {
    g.append(s('line', { x1: cx, y1: y, x2: cx + 26, y2: y, stroke: colour, 'stroke-width': 2.2, 'stroke-dasharray': dashed ? '6 4' : undefined }));
    g.append(s('text', { x: cx + 32, y: y + 4, class: 'legend-text', text }));
    cx += 44 + textWidth(text, 11);
  }
  return g;
}
