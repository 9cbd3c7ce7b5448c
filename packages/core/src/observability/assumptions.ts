import { availableParallelism } from 'node:os';
import { EnsembleError } from '../errors.js';
import type { LambdaPrices, ProfileAssumptions } from './profile.js';

/**
 * The figures profiles are estimated with, their sources, and the
 * environment variables that replace them (docs/profiles.md).
 */

/** When the tables below were taken from their sources. */
export const ASSUMPTIONS_DATE = '2026-12-01';

/**
 * codecarbon's CPU figures when it cannot read RAPL and does not know the CPU
 * model (codecarbon/external/hardware.py): POWER_CONSTANT, a generic 85 W TDP.
 * In its process tracking mode a process's CPU power is TDP x (CPU seconds /
 * wall seconds) / logical cores, so a CPU-second costs TDP / cores joules.
 */
export const CODECARBON_DEFAULT_TDP_W = 85;

/**
 * Grid carbon intensity per AWS region, gCO2e/kWh: codecarbon's
 * codecarbon/data/cloud/impact.csv (its `impact` column; eGRID for the US
 * regions, the cited national sources elsewhere).
 */
export const GRID_G_PER_KWH: Readonly<Record<string, number>> = {
  'us-east-1': 367.8,
  'us-east-2': 568.2,
  'us-west-1': 240.6,
  'us-west-2': 297.6,
  'ca-central-1': 20,
  'sa-east-1': 205,
  'eu-central-1': 615,
  'eu-west-1': 617,
  'eu-west-2': 623,
  'eu-west-3': 105,
  'eu-north-1': 47,
  'ap-south-1': 920,
  'ap-southeast-1': 419,
  'ap-southeast-2': 802,
  'ap-northeast-1': 516,
  'ap-northeast-2': 517,
  'ap-northeast-3': 516,
  'ap-east-1': 702,
};

/** The region whose grid is assumed when none is set or the one set is not in the table. */
export const DEFAULT_GRID_REGION = 'us-east-1';

/**
 * AWS Lambda on-demand prices, US East (N. Virginia), first pricing tier
 * (https://aws.amazon.com/lambda/pricing/): $0.0000166667 per GB-s on
 * x86_64, $0.0000133334 on arm64, $0.20 per million requests.
 */
export const LAMBDA_PRICES_US_EAST_1: LambdaPrices = {
  gbSecond: { x86_64: 0.0000166667, arm64: 0.0000133334 },
  request: 0.2 / 1_000_000,
};

/** Environment variables that replace a default. */
export const PROFILE_ENV = {
  wattsPerCore: 'ENSEMBLE_CPU_WATTS_PER_CORE',
  tdpW: 'ENSEMBLE_CPU_TDP_W',
  cores: 'ENSEMBLE_CPU_CORES',
  gridRegion: 'ENSEMBLE_GRID_REGION',
  gridGPerKwh: 'ENSEMBLE_GRID_G_PER_KWH',
  priceX86: 'ENSEMBLE_LAMBDA_PRICE_GB_S_X86',
  priceArm: 'ENSEMBLE_LAMBDA_PRICE_GB_S_ARM',
  priceRequest: 'ENSEMBLE_LAMBDA_PRICE_PER_REQUEST',
} as const;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The figures for this process: the defaults above, each replaced by its
 * variable when set. `version` names them all, so a profile says what it
 * was computed with: `2026-12-01 cpu=42.5W/core grid=us-east-1:367.8`.
 */
export function assumptionsFromEnv(env: Env = process.env, cores = availableParallelism()): ProfileAssumptions {
  const tdp = positive(env, PROFILE_ENV.tdpW) ?? CODECARBON_DEFAULT_TDP_W;
  const n = positive(env, PROFILE_ENV.cores) ?? cores;
  const wattsPerCore = positive(env, PROFILE_ENV.wattsPerCore) ?? tdp / n;
  const asked = env[PROFILE_ENV.gridRegion]?.trim() || env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || DEFAULT_GRID_REGION;
  const region = GRID_G_PER_KWH[asked] === undefined ? DEFAULT_GRID_REGION : asked;
  const own = positive(env, PROFILE_ENV.gridGPerKwh, true);
  const gridGPerKwh = own ?? GRID_G_PER_KWH[region];
  const d = LAMBDA_PRICES_US_EAST_1;
  const lambdaPrice: LambdaPrices = {
    gbSecond: { x86_64: positive(env, PROFILE_ENV.priceX86, true) ?? d.gbSecond.x86_64, arm64: positive(env, PROFILE_ENV.priceArm, true) ?? d.gbSecond.arm64 },
    request: positive(env, PROFILE_ENV.priceRequest, true) ?? d.request,
  };
  const prices = lambdaPrice === d || (lambdaPrice.gbSecond.x86_64 === d.gbSecond.x86_64 && lambdaPrice.gbSecond.arm64 === d.gbSecond.arm64 && lambdaPrice.request === d.request)
    ? '' : ` lambda=${lambdaPrice.gbSecond.x86_64}/${lambdaPrice.gbSecond.arm64}/${lambdaPrice.request}`;
  const version = `${ASSUMPTIONS_DATE} cpu=${Number(wattsPerCore.toPrecision(4))}W/core grid=${own === undefined ? region : 'custom'}:${gridGPerKwh}${prices}`;
  return { version, wattsPerCore, gridGPerKwh, lambdaPrice };
}

let cached: ProfileAssumptions | undefined;

/** This process's figures, read from its environment once. */
export function processAssumptions(): ProfileAssumptions {
  return (cached ??= assumptionsFromEnv());
}

function positive(env: Env, name: string, zeroOk = false): number | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0 || (!zeroOk && v === 0)) {
    throw new EnsembleError(`${name}=${JSON.stringify(raw)}: expected a ${zeroOk ? 'non-negative' : 'positive'} number`, 'usage');
  }
  return v;
}

/**
 * The Lambda function this process is, from what Lambda sets in every
 * function's environment (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, and the local
 * Lambda host sets it too); undefined anywhere else.
 */
export function lambdaFunctionOf(env: Env = process.env): { memoryMb: number; arch: 'x86_64' | 'arm64' } | undefined {
  const mb = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  if (!Number.isFinite(mb) || mb <= 0) return undefined;
  return { memoryMb: mb, arch: process.arch === 'arm64' ? 'arm64' : 'x86_64' };
}
