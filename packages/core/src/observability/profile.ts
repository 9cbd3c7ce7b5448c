/**
 * A run's energy, carbon and cost from what its record measured: pure
 * arithmetic, the figures it uses passed in (observability/assumptions.ts
 * holds the defaults and their sources; docs/profiles.md the formulas).
 */

/** The figures an estimate is made with. */
export interface ProfileAssumptions {
  /** Names this set of figures in every profile made with it, so old profiles stay readable after a change. */
  version: string;
  /** Average power of one fully busy core (W): energy per CPU-second, in joules. */
  wattsPerCore: number;
  /** Carbon intensity of the grid the work ran on (gCO2e per kWh). */
  gridGPerKwh: number;
  lambdaPrice: LambdaPrices;
}

/** AWS Lambda's on-demand prices in one region (USD). */
export interface LambdaPrices {
  /** Per GB-second of duration, by architecture. */
  gbSecond: { x86_64: number; arm64: number };
  /** Per invocation (AWS quotes it per million requests). */
  request: number;
}

export type LambdaArch = 'x86_64' | 'arm64';

/** What a stage line of a run record gives the estimate (storage/types.ts StageRunRecord has these fields). */
export interface ProfiledStage {
  cpuMs?: number;
  lambda?: { gbSeconds: number; invocations: number; arch: LambdaArch };
}

/** The gateway's own Lambda invocation, when it runs on Lambda. */
export interface GatewayBilling {
  durationMs: number;
  memoryMb: number;
  arch: LambdaArch;
}

/** What a run record stores as its profile (storage/types.ts RunProfile). */
export interface Profile {
  cpuMs: number;
  energyJ: number;
  carbonG: number;
  costUsd?: number;
  assumptions: string;
}

const J_PER_KWH = 3_600_000;

/** CPU time at a constant power per busy core: J = s x W. */
export function energyJoules(cpuMs: number, wattsPerCore: number): number {
  return (cpuMs / 1000) * wattsPerCore;
}

/** Energy at the grid's intensity: g = kWh x g/kWh. */
export function carbonGrams(energyJ: number, gridGPerKwh: number): number {
  return (energyJ / J_PER_KWH) * gridGPerKwh;
}

/** Lambda duration is billed per millisecond, rounded up, at the function's memory in GB (1 GB = 1024 MB). */
export function gbSeconds(durationMs: number, memoryMb: number): number {
  return (Math.ceil(durationMs) / 1000) * (memoryMb / 1024);
}

/** GB-seconds and invocations at the price of their architecture. */
export function lambdaCostUsd(gbS: number, invocations: number, arch: LambdaArch, prices: LambdaPrices): number {
  return gbS * prices.gbSecond[arch] + invocations * prices.request;
}

/**
 * The run's profile: its stages' CPU time to energy and carbon, and, when
 * any of it ran on Lambda, the cost of its share of the stage functions'
 * invocations plus the gateway's own.
 */
export function runProfile(stages: readonly ProfiledStage[], a: ProfileAssumptions, gateway?: GatewayBilling): Profile {
  let cpuMs = 0;
  let cost: number | undefined;
  for (const s of stages) {
    cpuMs += s.cpuMs ?? 0;
    if (s.lambda) cost = (cost ?? 0) + lambdaCostUsd(s.lambda.gbSeconds, s.lambda.invocations, s.lambda.arch, a.lambdaPrice);
  }
  if (gateway) cost = (cost ?? 0) + lambdaCostUsd(gbSeconds(gateway.durationMs, gateway.memoryMb), 1, gateway.arch, a.lambdaPrice);
  const energyJ = energyJoules(cpuMs, a.wattsPerCore);
  const p: Profile = {
    cpuMs: round(cpuMs, 2),
    energyJ: sig(energyJ),
    carbonG: sig(carbonGrams(energyJ, a.gridGPerKwh)),
    assumptions: a.version,
  };
  if (cost !== undefined) p.costUsd = sig(cost);
  return p;
}

/** Per 1,000 requests, from a set of runs' profiles: the mean times 1,000. */
export function per1000(profiles: readonly Profile[]): { energyJ: number; carbonG: number; costUsd?: number } {
  if (profiles.length === 0) return { energyJ: 0, carbonG: 0 };
  const k = 1000 / profiles.length;
  const sum = (f: (p: Profile) => number) => profiles.reduce((n, p) => n + f(p), 0);
  const out: { energyJ: number; carbonG: number; costUsd?: number } = { energyJ: sig(sum((p) => p.energyJ) * k), carbonG: sig(sum((p) => p.carbonG) * k) };
  if (profiles.some((p) => p.costUsd !== undefined)) out.costUsd = sig(sum((p) => p.costUsd ?? 0) * k);
  return out;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Six significant digits: energies and costs span many orders of magnitude. */
function sig(x: number): number {
  return x === 0 ? 0 : Number(x.toPrecision(6));
}
