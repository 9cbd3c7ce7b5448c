import type { RunRecord, StageRunRecord } from '@ensemble/core/storage/types.js';
import { per1000 } from '@ensemble/core/observability/profile.js';

/** How `ensemble runs` prints records: one line per run with its stages' profile, or a per-stage summary. */

const mb = (b: number | undefined): string => (b === undefined ? '-' : `${(b / 1_000_000).toFixed(1)}MB`);
const size = (b: number): string => (b >= 1_000_000 ? mb(b) : `${(b / 1000).toFixed(1)}KB`);
const ms = (x: number | undefined): string => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1));

function stageCell(s: StageRunRecord): string {
  const parts = [`${s.stage}[${s.batchSizes.join(',')}]`, `compute ${ms(s.computeMs)}`];
  if (s.transferMs !== undefined) parts.push(`transfer ${ms(s.transferMs)}`);
  if (s.bytesIn !== undefined) parts.push(`in ${mb(s.bytesIn)} out ${mb(s.bytesOut)}`);
  if (s.hops) parts.push(hopCell(s.hops));
  if (s.peakRssBytes !== undefined) parts.push(`rss ${mb(s.peakRssBytes)}`);
  if (s.cpuMs !== undefined) parts.push(`cpu ${ms(s.cpuMs)}`);
  if (s.coldStart) parts.push('cold');
  return parts.join(' ');
}

/** Lambda: Invokes, payload bytes each way, S3 spills, round trip vs the handler's own time. */
function hopCell(h: NonNullable<StageRunRecord['hops']>): string {
  const spill = h.spillUpBytes + h.spillDownBytes > 0
    ? `S3 up ${size(h.spillUpBytes)} down ${size(h.spillDownBytes)} ${ms(h.spillUpMs + h.spillDownMs)}ms`
    : 'no S3';
  return `invoke x${h.invokes} req ${size(h.requestBytes)} resp ${size(h.responseBytes)} ${spill} round trip ${ms(h.roundTripMs)} handler ${ms(h.functionMs)}`;
}

export function runLines(runs: readonly RunRecord[]): string[] {
  const out = [['started', 'id', 'version', 'status', 'ms', 'energy J', 'cost USD', 'stages (batch sizes; ms; bytes; peak RSS)', 'error'].join('\t')];
  for (const r of runs) {
    const p = r.profile;
    out.push([
      r.startedAt, r.id, r.version, `${r.status} ${r.httpStatus}`, r.durationMs,
      p ? p.energyJ.toPrecision(3) : '-', p?.costUsd !== undefined ? p.costUsd.toPrecision(3) : '-',
      r.stages.map(stageCell).join('; '), r.error ?? '',
    ].join('\t'));
  }
  return out;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export interface StageSummary {
  stage: string;
  runs: number;
  computeP50: number; computeP99: number;
  queueP50: number; queueP99: number;
  /** The stage's compute over all stages' compute, in these runs. */
  share: number;
  /** Its CPU time's energy per 1,000 requests (J), and its Lambda cost per 1,000 requests when it has one. */
  energyJPer1000: number;
  costUsdPer1000?: number;
}

/** Per stage over the given runs: compute and queue percentiles, share of compute, energy and cost per 1,000 requests. */
export function summarize(runs: readonly RunRecord[]): { stages: StageSummary[]; per1000: ReturnType<typeof per1000>; runs: number } {
  const by = new Map<string, StageRunRecord[]>();
  for (const r of runs) for (const s of r.stages) (by.get(s.stage) ?? by.set(s.stage, []).get(s.stage)!).push(s);
  const total = [...by.values()].flat().reduce((n, s) => n + s.computeMs, 0);
  const profiles = runs.flatMap((r) => (r.profile ? [r.profile] : []));
  // Energy per stage at the runs' own figure: the profile's energy over its CPU time is the watts per core used.
  const jPerCpuMs = (() => {
    const cpu = profiles.reduce((n, p) => n + p.cpuMs, 0);
    return cpu > 0 ? profiles.reduce((n, p) => n + p.energyJ, 0) / cpu : 0;
  })();
  const stages = [...by].map(([stage, lines]): StageSummary => {
    const compute = lines.map((s) => s.computeMs).sort((a, b) => a - b);
    const queue = lines.map((s) => s.queueWaitMs).sort((a, b) => a - b);
    const cpu = lines.reduce((n, s) => n + (s.cpuMs ?? 0), 0);
    const out: StageSummary = {
      stage, runs: lines.length,
      computeP50: quantile(compute, 0.5), computeP99: quantile(compute, 0.99),
      queueP50: quantile(queue, 0.5), queueP99: quantile(queue, 0.99),
      share: total > 0 ? compute.reduce((n, x) => n + x, 0) / total : 0,
      energyJPer1000: runs.length ? (cpu * jPerCpuMs * 1000) / runs.length : 0,
    };
    return out;
  });
  return { stages, per1000: per1000(profiles), runs: runs.length };
}

export function summaryLines(pipeline: string, s: ReturnType<typeof summarize>): string[] {
  const rows = [['stage', 'runs', 'compute p50', 'compute p99', 'queue p50', 'queue p99', 'share', 'energy J/1k']];
  for (const st of s.stages) {
    rows.push([st.stage, String(st.runs), ms(st.computeP50), ms(st.computeP99), ms(st.queueP50), ms(st.queueP99), `${(st.share * 100).toFixed(1)}%`, st.energyJPer1000.toPrecision(3)]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = [`${pipeline}: last ${s.runs} runs (ms)`, ...rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '))];
  const p = s.per1000;
  lines.push(`per 1,000 requests: energy ${p.energyJ.toPrecision(3)} J, carbon ${p.carbonG.toPrecision(3)} gCO2e${p.costUsd !== undefined ? `, cost $${p.costUsd.toPrecision(3)}` : ''}`);
  return lines;
}
