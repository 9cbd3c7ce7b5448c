import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { niceTicks, renderChart } from '../../src/bench/chart.js';
import { HAND_WRITTEN_MARKER, keepHandWritten, renderMarkdown, textTable, type Report } from '../../src/bench/report.js';
import { chartPanels } from '../../src/bench/run.js';
import type { BenchRow, ScenarioResult } from '../../src/bench/types.js';

function row(system: string, concurrency: number, throughput: number, extra: Partial<BenchRow> = {}): BenchRow {
  return { scenario: 'ocr', system, concurrency, throughput, unit: 'images/s', p50Ms: 100 * concurrency, p99Ms: 150 * concurrency, samples: 20, failed: 0, ...extra };
}

const OCR: ScenarioResult = {
  name: 'ocr',
  title: 'OCR',
  rows: [
    row('peer & co (sequential)', 1, 4.2, { cer: 0.0031 }),
    row('ensemble (gateway)', 1, 5.1, { cer: 0 }),
    row('ensemble (gateway)', 4, 8.3, { cer: 0, failed: 2, note: 'a | b' }),
    row('ensemble (gateway)', 16, 9.9, { cer: 0 }),
  ],
  targets: [
    { target: 'OCR at 16: >= 2x', measured: '9.9 vs 4.2 = 2.36x', met: true },
    { target: 'OCR p50 at 1 <= 0.6x', measured: '0.8x', met: false },
  ],
  notes: ['How it was measured.'],
};
const PIPE: ScenarioResult = {
  name: 'pipelined', title: 'Pipelined', targets: [], notes: [],
  rows: [{ scenario: 'pipelined', system: 'stage after stage', concurrency: 1, throughput: 700, unit: 'items/s', p50Ms: 90, p99Ms: 95, samples: 3, failed: 0 }],
};

const REPORT: Report = {
  command: 'npm run bench', startedAt: '2026-01-01T00:00:00Z', durationS: 61,
  machine: { cpu: 'Test CPU', cores: 2, memoryGiB: 24, os: 'Linux', node: 'v20.0.0', onnxruntime: 'onnxruntime-node 1.30.0', loadAvg: { start: 0.2, end: 0.4 } },
  scenarios: [OCR, PIPE], errors: [{ scenario: 'tiny', message: 'no demo' }], chart: 'benchmarks.svg',
};

describe('benchmark report', () => {
  it('keeps the hand-written part of the file it replaces, and nothing else of it', () => {
    const fresh = renderMarkdown(REPORT);
    const old = `# Benchmarks\n\nold numbers 1.23x\n\n${HAND_WRITTEN_MARKER}\n\n## What changed\n\nthe journal overlaps fsyncs\n`;
    const kept = keepHandWritten(fresh, old);
    expect(kept.startsWith(fresh)).toBe(true);
    expect(kept).toContain('## What changed\n\nthe journal overlaps fsyncs');
    expect(kept).not.toContain('old numbers 1.23x');
    expect(keepHandWritten(fresh, 'no marker here')).toBe(fresh);
    expect(keepHandWritten(fresh, undefined)).toBe(fresh);
  });

  it('writes the command, the machine, the targets, each scenario and the chart link', () => {
    const md = renderMarkdown(REPORT);
    expect(md).toContain('`npm run bench`');
    expect(md).toContain('| CPU | Test CPU, 2 cores |');
    expect(md).toContain('Node 20.0.0, onnxruntime-node 1.30.0');
    expect(md).toContain('| OCR at 16: >= 2x | 9.9 vs 4.2 = 2.36x | yes |');
    expect(md).toContain('| OCR p50 at 1 <= 0.6x | 0.8x | **no** |');
    expect(md).toContain('**Scenario tiny did not run:** no demo');
    expect(md).toContain('![Throughput and latency against concurrency](benchmarks.svg)');
    expect(md).toContain('## OCR');
    expect(md).toContain('How it was measured.');
    // A cell's pipe is escaped, so every table row keeps its 9 columns.
    expect(md).toContain('a \\| b');
    const ocrRows = md.split('\n').filter((l) => l.startsWith('| ocr |'));
    expect(ocrRows).toHaveLength(4);
    for (const l of ocrRows) expect(l.replace(/\\\|/g, '').split('|').length - 2).toBe(9);
    expect(md).toContain('| ocr | ensemble (gateway) | 4 | 8.30 images/s | 400 | 600 | 0.00% | 20 (+2 failed) | a \\| b |');
    expect(md).toContain('0.31%');
    // The idle machine gets no warning about other work.
    expect(md).not.toContain('other work was running');
    expect(renderMarkdown({ ...REPORT, machine: { ...REPORT.machine, loadAvg: { start: 3, end: 3 } } })).toContain('other work was running');
  });

  it('prints an aligned text table', () => {
    const lines = textTable(OCR.rows).split('\n');
    expect(lines).toHaveLength(2 + OCR.rows.length);
    expect(lines[1]).toMatch(/^-+( +-+)+$/);
    const col = lines[0].indexOf('throughput') + 'throughput'.length;
    // Right-aligned numbers end where the header does.
    for (const l of lines.slice(2)) expect(l.slice(0, col)).toMatch(/images\/s$/);
  });
});

describe('benchmark chart', () => {
  it('has throughput and latency panels for scenarios measured at several concurrencies', () => {
    const panels = chartPanels([OCR, PIPE]);
    expect(panels.map((p) => p.title)).toEqual(['ocr: throughput', 'ocr: latency']);
    const tput = panels[0].series;
    expect(tput.map((s) => s.name)).toEqual(['peer & co, sequential', 'ensemble']);
    expect(tput[0].reference).toBe(true);
    expect(tput[1].points).toEqual([[1, 5.1], [4, 8.3], [16, 9.9]]);
    expect(panels[1].series.map((s) => s.name)).toEqual(['peer & co, sequential p50', 'ensemble p50', 'ensemble p99']);
  });

  it('is an SVG that renders, with a line per series and escaped names', async () => {
    const svg = renderChart(chartPanels([OCR]), 'Bench & test');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('Bench &amp; test');
    expect(svg).toContain('peer &amp; co');
    expect(svg).not.toMatch(/peer & co/);
    // Throughput: reference + ensemble; latency: reference + p50 + p99.
    expect(svg.match(/<polyline/g)).toHaveLength(5);
    const meta = await sharp(Buffer.from(svg)).metadata();
    expect(meta.format).toBe('svg');
    expect(meta.width).toBe(920);
  });

  it('picks round axis steps', () => {
    expect(niceTicks(9.9)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(6083)).toEqual([0, 2000, 4000, 6000, 8000]);
    expect(niceTicks(0)).toEqual([0]);
  });
});
