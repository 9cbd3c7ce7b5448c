import type { FunctionStageProposal, Measurement, Proposal, StageProfile, StageProposal } from './types.js';

export interface ProposeOptions {
  /** The pipeline's p99 latency budget in ms (`--p99`). */
  budgetMs: number;
  stages: StageProfile[];
  /** Function stages (name and current max delay): they get max_delay_ms 0. */
  functionStages?: { stage: string; maxDelayMs: number }[];
  /** Cores of the machine, for the note on stages sharing them. */
  cores?: number;
}

/**
 * Per-item p99 through a stage under load: the item may wait `maxDelay` for
 * its batch to fill, then for a busy instance to finish the batch before it
 * (typically one batch time), then for its own batch (p99).
 */
export function estimateP99(m: Pick<Measurement, 'batchP50Ms' | 'batchP99Ms'>, maxDelayMs: number): number {
  return maxDelayMs + m.batchP50Ms + m.batchP99Ms;
}

/**
 * How long a batch may wait to fill: at most the fixed cost of one call (what
 * a second item sharing the call saves), estimated from the batch-1 and
 * batch-b times of the same split, and at most a tenth of the batch time.
 * Batching that costs more per item than it saves (padding) gets no wait.
 */
export function proposeMaxDelay(one: Measurement | undefined, chosen: Measurement): number {
  if (chosen.batch <= 1 || !one) return 0;
  const perItem = (chosen.batchP50Ms - one.batchP50Ms) / (chosen.batch - 1);
  const fixed = one.batchP50Ms - Math.max(0, perItem);
  // Never more than a tenth of the batch's own time: a noisy batch-1 measurement must not buy a long wait.
  return Math.max(0, Math.round(Math.min(fixed, chosen.batchP50Ms / 10)));
}

interface Candidate { m: Measurement; delay: number; est: number; rps: number }

/** Every source-to-sink path of the stages' dependency DAG, as lists of stage names. */
export function stagePaths(stages: StageProfile[]): string[][] {
  const names = new Set(stages.map((s) => s.stage));
  const deps = new Map(stages.map((s) => [s.stage, s.dependsOn.filter((d) => names.has(d))]));
  const down = new Map<string, string[]>();
  for (const [s, ds] of deps) for (const d of ds) down.set(d, [...(down.get(d) ?? []), s]);
  const out: string[][] = [];
  const walk = (n: string, path: string[]) => {
    const next = down.get(n) ?? [];
    if (!next.length) { out.push([...path, n]); return; }
    for (const x of next) walk(x, [...path, n]);
  };
  for (const [s, ds] of deps) if (!ds.length) walk(s, []);
  return out;
}

/** Lowest estimated latency, then fewer cores, then smaller batch. */
function byLatency(a: Candidate, b: Candidate): number {
  return a.est - b.est || a.m.instances * a.m.threads - b.m.instances * b.m.threads || a.m.batch - b.m.batch;
}

/**
 * Measurements in, settings out, the way Triton's Model Analyzer picks a
 * configuration from perf_analyzer sweeps — with the stages of a pipeline
 * considered together. The pipeline sustains what its slowest stage does
 * (in requests/s: a stage after a fan-out sees several items per request),
 * so: find the highest requests/s R such that every stage has a measured
 * configuration reaching R and, taking for each stage the lowest-latency
 * such configuration, every path of stages stays within the p99 budget.
 * Stages that are not the bottleneck thus get their fastest configuration
 * that keeps up, not their biggest. Pure: no I/O, no clock.
 */
export function propose(opts: ProposeOptions): Proposal {
  if (!(opts.budgetMs > 0)) throw new RangeError(`latency budget must be positive, got ${opts.budgetMs}`);
  const profiled = opts.stages.filter((p) => p.measurements.length > 0);
  const cands = new Map<string, Candidate[]>(profiled.map((p) => [p.stage, p.measurements.map((m) => {
    const one = p.measurements.find((x) => x.batch === 1 && x.instances === m.instances && x.threads === m.threads);
    const delay = proposeMaxDelay(one, m);
    return { m, delay, est: estimateP99(m, delay), rps: m.itemsPerSec / (p.itemsPerRequest ?? 1) };
  })]));
  const paths = stagePaths(profiled);
  const pathSum = (pick: Map<string, Candidate>, path: string[]) => path.reduce((a, n) => a + pick.get(n)!.est, 0);
  const fits = (pick: Map<string, Candidate>) => paths.every((path) => pathSum(pick, path) <= opts.budgetMs);

  const thresholds = [...new Set([...cands.values()].flatMap((cs) => cs.map((c) => c.rps)))].sort((a, b) => b - a);
  let chosen: Map<string, Candidate> | undefined;
  for (const t of thresholds) {
    const pick = new Map<string, Candidate>();
    for (const [stage, cs] of cands) {
      const ok = cs.filter((c) => c.rps >= t).sort(byLatency)[0];
      if (!ok) break;
      pick.set(stage, ok);
    }
    if (pick.size === cands.size && fits(pick)) { chosen = pick; break; }
  }
  const within = chosen !== undefined;
  // Nothing fits: the fastest configuration of every stage (the budget cannot be met on this machine).
  chosen ??= new Map([...cands].map(([stage, cs]) => [stage, [...cs].sort(byLatency)[0]]));
  const capacity = Math.min(...[...chosen.values()].map((c) => c.rps));

  const stages: StageProposal[] = opts.stages.map((p) => {
    const c = chosen!.get(p.stage);
    if (!c) {
      return { stage: p.stage, ...p.current, itemsPerSec: NaN, requestsPerSec: NaN, estimatedP99Ms: NaN, pathP99Ms: NaN, withinBudget: false, reason: 'nothing measured: kept as is' };
    }
    const through = paths.filter((path) => path.includes(p.stage));
    const pathP99Ms = Math.max(...through.map((path) => pathSum(chosen!, path)));
    const bottleneck = c.rps === capacity;
    const reason = !within
      ? `no combination of configurations keeps every path within ${fmtMs(opts.budgetMs)}: lowest latency taken`
      : bottleneck
        ? `the bottleneck: the most requests/s any configuration reaches with the pipeline within ${fmtMs(opts.budgetMs)}`
        : `keeps up with the bottleneck (${fmtRate(capacity)} requests/s) at the lowest latency`;
    const r: StageProposal = {
      stage: p.stage, instances: c.m.instances, threads: c.m.threads, maxSize: c.m.batch, maxDelayMs: c.delay,
      itemsPerSec: c.m.itemsPerSec, requestsPerSec: c.rps, estimatedP99Ms: c.est, pathP99Ms, withinBudget: pathP99Ms <= opts.budgetMs, reason,
    };
    const current = p.measurements.find((m) => m.batch === p.current.maxSize && m.instances === p.current.instances && m.threads === p.current.threads);
    if (current) r.currentItemsPerSec = current.itemsPerSec;
    return r;
  });

  const functionStages: FunctionStageProposal[] = (opts.functionStages ?? []).map((f) => ({
    stage: f.stage, maxDelayMs: 0, currentMaxDelayMs: f.maxDelayMs,
    reason: 'a function stage runs each item as it comes (concurrently, in the gateway): waiting to fill a batch only adds latency',
  }));

  const notes: string[] = [];
  const used = stages.reduce((n, s) => n + (Number.isFinite(s.itemsPerSec) ? s.instances * s.threads : 0), 0);
  if (opts.cores !== undefined && used > opts.cores) {
    notes.push(`each stage was profiled alone; together the proposed sessions want ${used} threads on ${opts.cores} cores, so under full load they share them (pipelining still overlaps the stages).`);
  }
  if (!within) notes.push(`the budget of ${fmtMs(opts.budgetMs)} cannot be met on this machine even with every stage at its fastest: raise --p99.`);
  const bottleneck = stages.find((s) => s.requestsPerSec === capacity)?.stage ?? '';
  return { budgetMs: opts.budgetMs, stages, functionStages, capacity: { requestsPerSec: capacity, bottleneck }, notes };
}

function fmtMs(ms: number): string {
  return `${ms >= 10 ? ms.toFixed(0) : ms.toFixed(1)} ms`;
}

function fmtRate(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}
