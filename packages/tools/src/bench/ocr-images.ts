import { renderTextImage } from './render.js';

export interface OcrSample {
  name: string;
  png: Buffer;
  /** The lines drawn, top to bottom. */
  lines: string[];
}

/** Printed-document-like pages: a few lines each, three DejaVu faces, several sizes and widths. */
const PAGES: { font: string; size: number; weight?: 'bold'; lines: string[] }[] = [
  { font: 'DejaVu Sans', size: 28, lines: ['Invoice number 20231147', 'Total amount due: 1284.50 EUR'] },
  { font: 'DejaVu Serif', size: 32, lines: ['The quick brown fox', 'jumps over the lazy dog'] },
  { font: 'DejaVu Sans Mono', size: 24, lines: ['ORDER-7781 qty 12 unit 4.99', 'ORDER-7782 qty 3 unit 19.00', 'ORDER-7783 qty 40 unit 0.25'] },
  { font: 'DejaVu Sans', size: 36, weight: 'bold', lines: ['Meeting moved to Friday'] },
  { font: 'DejaVu Serif', size: 26, lines: ['Please keep this receipt', 'for your records', 'Thank you for shopping with us'] },
  { font: 'DejaVu Sans', size: 30, lines: ['Platform 9 departs at 14:35', 'Next stop Central Station'] },
  { font: 'DejaVu Sans Mono', size: 28, lines: ['user@example.com', 'Password reset code 482913'] },
  { font: 'DejaVu Serif', size: 34, weight: 'bold', lines: ['Chapter 4', 'Serving models in stages'] },
  { font: 'DejaVu Sans', size: 24, lines: ['Batch size 16 with a delay of 2 ms', 'gives the best throughput', 'under a latency budget of 200 ms', 'on two cores'] },
  { font: 'DejaVu Sans', size: 32, lines: ['Open daily 8am to 10pm'] },
  { font: 'DejaVu Serif', size: 28, lines: ['Shipping address', '221B Baker Street London'] },
  { font: 'DejaVu Sans Mono', size: 26, lines: ['ERROR 503 service unavailable', 'retry after 30 seconds'] },
];

/** The benchmark's fixed image set (the first `count` pages), rendered now: no image files in the repository. */
export async function ocrSamples(count = PAGES.length): Promise<OcrSample[]> {
  const out: OcrSample[] = [];
  for (const [i, p] of PAGES.slice(0, count).entries()) {
    out.push({ name: `page-${i + 1}`, png: await renderTextImage({ lines: p.lines, font: p.font, size: p.size, weight: p.weight ?? 'normal' }), lines: p.lines });
  }
  return out;
}

/** Whitespace collapsed: line breaks versus spaces between boxes are layout, not recognition. */
export function normalizeText(lines: string[]): string {
  return lines.join(' ').replace(/\s+/g, ' ').trim();
}
