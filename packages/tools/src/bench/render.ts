/**
 * Test images with known text: sharp renders SVG text (librsvg + the DejaVu
 * fonts installed on the machine), so OCR tests need no fixture files.
 */
import sharp from 'sharp';

export interface RenderOptions {
  /** One entry per text line, top to bottom. */
  lines: string[];
  /** Font family, e.g. 'DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono'. */
  font?: string;
  /** Font size in px. */
  size?: number;
  weight?: 'normal' | 'bold';
  /** CSS colours. */
  fg?: string;
  bg?: string;
  format?: 'png' | 'jpeg';
  /** Image width in px; by default wide enough for the longest line. */
  width?: number;
  /** Margin around the text block in px. */
  padding?: number;
  /** Line pitch as a multiple of the font size. */
  lineHeight?: number;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface TextLayout {
  width: number;
  height: number;
  padding: number;
  /** Distance between the tops of consecutive lines. */
  pitch: number;
}

/** Where renderTextImage puts things: line i spans y = padding + i * pitch .. + pitch. */
export function textLayout(opts: RenderOptions): TextLayout {
  const size = opts.size ?? 32;
  const padding = opts.padding ?? Math.round(size * 0.8);
  const pitch = Math.round(size * (opts.lineHeight ?? 1.6));
  const longest = Math.max(0, ...opts.lines.map((l) => l.length));
  // DejaVu's widest glyphs (bold, mono) run to about 0.7 em; overestimating only adds margin.
  const width = opts.width ?? Math.max(64, Math.ceil(longest * size * 0.72) + 2 * padding);
  const height = Math.max(64, 2 * padding + pitch * opts.lines.length);
  return { width, height, padding, pitch };
}

/** Render text lines to an encoded image. */
export async function renderTextImage(opts: RenderOptions): Promise<Buffer> {
  const size = opts.size ?? 32;
  const font = opts.font ?? 'DejaVu Sans';
  const { width, height, padding, pitch } = textLayout(opts);
  const texts = opts.lines.map((line, i) => {
    const y = padding + i * pitch + Math.round(size * 1.05);
    return `<text x="${padding}" y="${y}" xml:space="preserve">${escapeXml(line)}</text>`;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`
    + `<rect width="100%" height="100%" fill="${escapeXml(opts.bg ?? '#ffffff')}"/>`
    + `<g font-family="${escapeXml(font)}" font-size="${size}" font-weight="${opts.weight ?? 'normal'}" fill="${escapeXml(opts.fg ?? '#000000')}">`
    + texts.join('')
    + '</g></svg>';
  const img = sharp(Buffer.from(svg)).flatten({ background: opts.bg ?? '#ffffff' });
  return opts.format === 'jpeg' ? img.jpeg({ quality: 90 }).toBuffer() : img.png().toBuffer();
}

/** Levenshtein distance over Unicode code points. */
export function editDistance(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  let prev = new Array<number>(y.length + 1);
  let cur = new Array<number>(y.length + 1);
  for (let j = 0; j <= y.length; j++) prev[j] = j;
  for (let i = 1; i <= x.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= y.length; j++) {
      const sub = prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1);
      cur[j] = Math.min(sub, prev[j] + 1, cur[j - 1] + 1);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[y.length];
}

/** Character error rate: edit distance over the expected length (1 when nothing was expected but something came back). */
export function characterErrorRate(expected: string, actual: string): number {
  const n = Array.from(expected).length;
  if (n === 0) return actual.length === 0 ? 0 : 1;
  return editDistance(expected, actual) / n;
}
