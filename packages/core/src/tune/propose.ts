import type { Measurement, Proposal, StageProfile, StageProposal } from './types.js';

export interface ProposeOptions {
  /** The pipeline's p99 latency budget in ms (`--p99`). */
  budgetMs: number;
  stages: StageProfile[];
  /** Cores of the machine, for the note on stages sharing them. */
  cores?: number;
}

/** Throughputs within this fraction of the best count as equal; then lower latency and fewer cores win. */
const TIE = 0.03;

/**
 * Per-item p99 through a stage under load: the item may wait `maxDelay` for
 * its batch to fill, then for a busy instance to finish the batch before it
 * (at worst one batch time), then for its own batch.
 */
export function estimateP99(m: Pick<Measurement, 'batchP99Ms'>, maxDelayMs: number): number {
  return maxDelayMs + 2 * m.batchP99Ms;
}

/**
 * How long a batch may wait to fill: at most the fixed cost of one call (what
 * a second item sharing the call saves), estimated from the batch-1 and
 * batch-b times of the same split; never more than the budget leaves.
 */
export function proposeMaxDelay(one: Measurement | undefined, chosen: Measurement, slackMs: number): number {
  if (chosen.batch <= 1 || !one) return 0;
  const perItem = (chosen.batchP50Ms - one.batchP50Ms) / (chosen.batch - 1);
  const fixed = Math.max(0, one.batchP50Ms - Math.max(0, perItem));
  return Math.max(0, Math.min(Math.round(fixed), Math.floor(slackMs)));
}

/** Smallest single-item latency seen for the stage (any split): its weight when splitting the budget. */
function unitCost(p: StageProfile): number {
  const ones = p.measurements.filter((m) => m.batch === 1).map((m) => m.batchP50Ms);
  const all = ones.length ? ones : p.measurements.map((m) => m.batchP50Ms / m.batch);
  return all.length ? Math.max(1e-6, Math.min(...all)) : 1e-6;
}

/**
 * Each stage's share of the budget: along the most expensive path through the
 * stage (by single-item cost), in proportion to its cost. Stages on parallel
 * branches each get their path's share instead of splitting it.
 */
export function budgetShares(stages: StageProfile[], budgetMs: number): Map<string, number> {
  const cost = new Map(stages.map((s) => [s.stage, unitCost(s)]));
  const byName = new Map(stages.map((s) => [s.stage, s]));
  const down = new Map<string, string[]>();
  for (const s of stages) for (const d of s.dependsOn) if (byName.has(d)) down.set(d, [...(down.get(d) ?? []), s.stage]);
  const upMemo = new Map<string, number>();
  const downMemo = new Map<string, number>();
  // Longest cost path ending at / starting from a stage (the DAG is acyclic: loadManifest checked it).
  const up = (n: string): number => {
    if (!upMemo.has(n)) upMemo.set(n, cost.get(n)! + Math.max(0, ...byName.get(n)!.dependsOn.filter((d) => byName.has(d)).map(up)));
    return upMemo.get(n)!;
  };
  const dn = (n: string): number => {
    if (!downMemo.has(n)) downMemo.set(n, cost.get(n)! + Math.max(0, ...(down.get(n) ?? []).map(dn)));
    return downMemo.get(n)!;
  };
  const out = new Map<string, number>();
  for (const s of stages) {
    const path = up(s.stage) + dn(s.stage) - cost.get(s.stage)!;
    out.set(s.stage, (budgetMs * cost.get(s.stage)!) / path);
  }
  return out;
}

function proposeStage(p: StageProfile, budgetMs: number): StageProposal {
  const base = { stage: p.stage, budgetMs };
  const current = p.measurements.find((m) => m.batch === p.current.maxSize && m.instances === p.current.instances && m.threads === p.current.threads);
  if (p.measurements.length === 0) {
    return { ...base, ...p.current, itemsPerSec: NaN, estimatedP99Ms: NaN, withinBudget: false, reason: 'nothing measured: kept as is' };
  }
  const candidates = p.measurements.map((m) => {
    const one = p.measurements.find((x) => x.batch === 1 && x.instances === m.instances && x.threads === m.threads);
    const delay = proposeMaxDelay(one, m, budgetMs - estimateP99(m, 0));
    return { m, delay, est: estimateP99(m, delay) };
  });
  const fitting = candidates.filter((c) => c.est <= budgetMs);
  let pick: (typeof candidates)[number];
  let reason: string;
  if (fitting.length) {
    const best = Math.max(...fitting.map((c) => c.m.itemsPerSec));
    const near = fitting.filter((c) => c.m.itemsPerSec >= best * (1 - TIE));
    near.sort((a, b) => a.est - b.est || a.m.instances * a.m.threads - b.m.instances * b.m.threads || a.m.batch - b.m.batch);
    pick = near[0];
    reason = `highest items/s with p99 within ${fmtMs(budgetMs)}`
      + (near.length > 1 ? ` (${near.length} configurations within ${TIE * 100}% of the best: lowest latency taken)` : '');
  } else {
    pick = [...candidates].sort((a, b) => a.est - b.est || b.m.itemsPerSec - a.m.itemsPerSec)[0];
    reason = `no configuration meets ${fmtMs(budgetMs)}: lowest latency taken`;
  }
  const r: StageProposal = {
    ...base,
    instances: pick.m.instances, threads: pick.m.threads, maxSize: pick.m.batch, maxDelayMs: pick.delay,
    itemsPerSec: pick.m.itemsPerSec, estimatedP99Ms: pick.est, withinBudget: pick.est <= budgetMs, reason,
  };
  if (current) r.currentItemsPerSec = current.itemsPerSec;
  return r;
}

/**
 * Measurements in, settings out: for every stage the batch size, max delay
 * and instance × thread split with the most items/s whose estimated p99 fits
 * the stage's share of the budget (the way Triton's Model Analyzer picks a
 * configuration from perf_analyzer sweeps). Pure: no I/O, no clock.
 */
export function propose(opts: ProposeOptions): Proposal {
  if (!(opts.budgetMs > 0)) throw new RangeError(`latency budget must be positive, got ${opts.budgetMs}`);
  const shares = budgetShares(opts.stages, opts.budgetMs);
  const stages = opts.stages.map((p) => proposeStage(p, shares.get(p.stage)!));
  const notes: string[] = [];
  const cores = opts.cores;
  const used = stages.reduce((n, s) => n + s.instances * s.threads, 0);
  if (cores !== undefined && used > cores) {
    notes.push(`each stage was profiled alone; together the proposed sessions want ${used} threads on ${cores} cores, so under full load stages slow each other down (pipelining still overlaps them).`);
  }
  if (stages.some((s) => !s.withinBudget)) notes.push('some stages cannot meet their share of the budget on this machine: raise --p99 or give them faster hardware.');
  return { budgetMs: opts.budgetMs, stages, notes };
}

function fmtMs(ms: number): string {
  return `${ms >= 10 ? ms.toFixed(0) : ms.toFixed(1)} ms`;
}
