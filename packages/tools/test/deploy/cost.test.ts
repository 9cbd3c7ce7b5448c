import { describe, expect, it } from 'vitest';
import { billedMs, costMarkdown, costPer1000Requests, LAMBDA_PRICES_X86_US_EAST_1 } from '../../src/deploy/cost.js';

describe('Lambda cost per 1,000 requests', () => {
  it('prices GB-seconds at the memory size plus a flat price per invocation', () => {
    const t = costPer1000Requests([
      { function: 'A', memoryMb: 1024, invocationsPerRequest: 1, billedMsPerInvocation: 1000 },
      // Twice the memory, twice the calls, a quarter of the time: the same GB-seconds, twice the request charge.
      { function: 'B', memoryMb: 2048, invocationsPerRequest: 2, billedMsPerInvocation: 250 },
    ]);
    expect(t.rows[0].gbSecondsPer1000).toBeCloseTo(1000, 9);
    expect(t.rows[1].gbSecondsPer1000).toBeCloseTo(1000, 9);
    expect(t.rows[0].durationUsdPer1000).toBeCloseTo(0.0166667, 9);
    expect(t.rows[0].requestsUsdPer1000).toBeCloseTo(0.0002, 12);
    expect(t.rows[1].requestsUsdPer1000).toBeCloseTo(0.0004, 12);
    expect(t.totalUsdPer1000).toBeCloseTo(2 * 0.0166667 + 0.0006, 9);
    expect(LAMBDA_PRICES_X86_US_EAST_1.source).toContain('us-east-1');
    expect(costMarkdown(t)).toContain('| A | 1024 MB | 1.00 | 1000.0 | 1000.0 | $0.0167 | $0.0002 | $0.0169 |');
  });

  it('rounds every invocation up to the next millisecond', () => {
    expect(billedMs(0.2)).toBe(1);
    expect(billedMs(12.01)).toBe(13);
    expect(billedMs(40)).toBe(40);
  });
});
