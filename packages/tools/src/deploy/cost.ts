/**
 * What Lambda charges for a workload, from measured durations: per function,
 * its invocations and billed milliseconds per request at its memory size.
 * Lambda bills each invocation's duration rounded up to the millisecond,
 * times the memory in GB, plus a flat price per invocation.
 */

export interface LambdaPrices {
  /** USD per GB-second of duration. */
  gbSecond: number;
  /** USD per invocation. */
  request: number;
  /** Where the numbers come from, for the docs. */
  source: string;
}

/**
 * AWS Lambda list prices for x86 in us-east-1 (first 6 billion GB-s of a
 * month; the free tier left out). They change: check aws.amazon.com/lambda/pricing.
 */
export const LAMBDA_PRICES_X86_US_EAST_1: LambdaPrices = {
  gbSecond: 0.0000166667,
  request: 0.20 / 1_000_000,
  source: 'AWS Lambda list price, x86, us-east-1: $0.0000166667 per GB-s, $0.20 per 1M requests',
};

/** One function's share of a request, averaged over a measured run. */
export interface FunctionUsage {
  function: string;
  memoryMb: number;
  /** Invocations per request (a stage may be called several times per request: one call per chunk). */
  invocationsPerRequest: number;
  /** Billed milliseconds per invocation, on average (each rounded up to 1 ms before averaging). */
  billedMsPerInvocation: number;
}

export interface CostRow extends FunctionUsage {
  gbSecondsPer1000: number;
  durationUsdPer1000: number;
  requestsUsdPer1000: number;
  totalUsdPer1000: number;
}

export interface CostTable {
  rows: CostRow[];
  totalUsdPer1000: number;
}

/** Cost of 1,000 requests, per function and in total. */
export function costPer1000Requests(usage: FunctionUsage[], prices: LambdaPrices = LAMBDA_PRICES_X86_US_EAST_1): CostTable {
  const rows = usage.map((u): CostRow => {
    const invocations = 1000 * u.invocationsPerRequest;
    const gbSeconds = invocations * (u.billedMsPerInvocation / 1000) * (u.memoryMb / 1024);
    const durationUsd = gbSeconds * prices.gbSecond;
    const requestsUsd = invocations * prices.request;
    return { ...u, gbSecondsPer1000: gbSeconds, durationUsdPer1000: durationUsd, requestsUsdPer1000: requestsUsd, totalUsdPer1000: durationUsd + requestsUsd };
  });
  return { rows, totalUsdPer1000: rows.reduce((s, r) => s + r.totalUsdPer1000, 0) };
}

/** Billed milliseconds of one invocation: Lambda rounds each duration up to the next millisecond. */
export function billedMs(durationMs: number): number {
  return Math.max(1, Math.ceil(durationMs));
}

/** The table as Markdown, money to 4 decimals (fractions of a cent matter per 1,000 requests). */
export function costMarkdown(table: CostTable): string {
  const usd = (x: number) => `$${x.toFixed(4)}`;
  const lines = [
    '| Function | Memory | Invocations per request | Billed ms per invocation | GB-s per 1,000 requests | Duration | Requests | Total per 1,000 requests |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...table.rows.map((r) => `| ${r.function} | ${r.memoryMb} MB | ${r.invocationsPerRequest.toFixed(2)} | ${r.billedMsPerInvocation.toFixed(1)} | ${r.gbSecondsPer1000.toFixed(1)} | ${usd(r.durationUsdPer1000)} | ${usd(r.requestsUsdPer1000)} | ${usd(r.totalUsdPer1000)} |`),
    `| **All** | | | | ${table.rows.reduce((s, r) => s + r.gbSecondsPer1000, 0).toFixed(1)} | ${usd(table.rows.reduce((s, r) => s + r.durationUsdPer1000, 0))} | ${usd(table.rows.reduce((s, r) => s + r.requestsUsdPer1000, 0))} | **${usd(table.totalUsdPer1000)}** |`,
  ];
  return lines.join('\n');
}
