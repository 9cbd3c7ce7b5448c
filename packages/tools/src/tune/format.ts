import type { Proposal, StageProfile } from './types.js';

/** Columns padded to their widest cell; the first column left-aligned, the rest right-aligned. */
export function textTable(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd()).join('\n');
}

const n1 = (x: number): string => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '-');

export function formatMeasurements(p: StageProfile): string {
  const rows = [['instances x threads', 'batch', 'items/s', 'batch p50 ms', 'batch p99 ms', 'calls']];
  for (const m of p.measurements) {
    rows.push([`${m.instances} x ${m.threads}`, String(m.batch), n1(m.itemsPerSec), n1(m.batchP50Ms), n1(m.batchP99Ms), String(m.calls)]);
  }
  for (const s of p.skipped) rows.push([`${s.instances} x ${s.threads}`, String(s.batch), 'skipped', '', '', s.reason]);
  return textTable(rows);
}

export function formatProposal(pr: Proposal, profiles: StageProfile[]): string {
  const rows = [['stage', 'batch (max_size)', 'max_delay_ms', 'instances x threads', 'items/s', 'requests/s', 'est. p99 ms', 'path p99 ms']];
  const arrow = (a: string, b: string) => (a === b ? b : `${a} -> ${b}`);
  for (const s of pr.stages) {
    const cur = profiles.find((p) => p.stage === s.stage)!.current;
    rows.push([
      s.stage,
      arrow(String(cur.maxSize), String(s.maxSize)),
      arrow(String(cur.maxDelayMs), String(s.maxDelayMs)),
      arrow(`${cur.instances} x ${cur.threads}`, `${s.instances} x ${s.threads}`),
      s.currentItemsPerSec !== undefined && s.currentItemsPerSec !== s.itemsPerSec ? `${n1(s.currentItemsPerSec)} -> ${n1(s.itemsPerSec)}` : n1(s.itemsPerSec),
      n1(s.requestsPerSec),
      n1(s.estimatedP99Ms),
      n1(s.pathP99Ms) + (s.withinBudget ? '' : ' (over)'),
    ]);
  }
  for (const f of pr.functionStages) {
    if (f.currentMaxDelayMs !== f.maxDelayMs) rows.push([f.stage, '', arrow(String(f.currentMaxDelayMs), String(f.maxDelayMs)), '', '', '', '', '']);
  }
  const lines = [textTable(rows)];
  lines.push(`estimated capacity: ${n1(pr.capacity.requestsPerSec)} requests/s (bottleneck: ${pr.capacity.bottleneck})`);
  for (const s of pr.stages) lines.push(`  ${s.stage}: ${s.reason}`);
  const changed = pr.functionStages.filter((f) => f.currentMaxDelayMs !== f.maxDelayMs);
  if (changed.length) lines.push(`  ${changed.map((f) => f.stage).join(', ')}: ${changed[0].reason}`);
  for (const n of pr.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
