// Small DOM and SVG builders: the console has no framework.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * An HTML element with attributes and children (strings become text).
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined | ((e: Event) => void)>} [attrs]
 * @param {(Node | string | undefined | null | false)[]} [children]
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const c of children) if (c !== undefined && c !== null && c !== false) el.append(c);
  return el;
}

/**
 * An SVG element.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined | ((e: Event) => void)>} [attrs]
 * @param {(Node | string | undefined | null | false)[]} [children]
 * @returns {SVGElement}
 */
export function s(tag, attrs = {}, children = []) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  for (const c of children) if (c !== undefined && c !== null && c !== false) el.append(c);
  return el;
}

/** @param {Element} el @param {Record<string, any>} attrs */
function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** Rough width of a label in px (the console's sans at `size` px), for laying out before rendering. */
export function textWidth(text, size = 12) {
  return Math.ceil(text.length * size * 0.58);
}

/** @param {number} ms */
export function fmtMs(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '–';
  if (ms === 0) return '0';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** @param {string} iso */
export function fmtTime(iso) {
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** "Nice" axis ticks from 0 to max: 1, 2 or 5 times a power of ten; `cover` adds one at or past max. */
export function ticks(max, count = 6, cover = false) {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((v) => v >= raw) ?? raw;
  const out = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  if (cover && out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}
