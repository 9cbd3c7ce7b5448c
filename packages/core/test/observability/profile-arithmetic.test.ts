import { describe, expect, it } from 'vitest';
import { carbonGrams, energyJoules, gbSeconds, lambdaCostUsd, per1000, runProfile, type ProfileAssumptions } from '../../src/observability/profile.js';
import { LAMBDA_PRICES_US_EAST_1, assumptionsFromEnv } from '../../src/observability/assumptions.js';
import { EnsembleError } from '../../src/errors.js';

const A: ProfileAssumptions = { version: 'test', wattsPerCore: 10, gridGPerKwh: 360, lambdaPrice: LAMBDA_PRICES_US_EAST_1 };

describe('profile arithmetic', () => {
  it('energy is CPU seconds x watts per core, carbon its kWh x grid intensity', () => {
    // 1.5 CPU-s at 10 W = 15 J; 15 J = 15 / 3.6e6 kWh; x 360 g/kWh = 0.0015 g.
    expect(energyJoules(1500, 10)).toBe(15);
    expect(carbonGrams(15, 360)).toBeCloseTo(0.0015, 12);
  });

  it('Lambda duration is billed per rounded-up millisecond at memory / 1024 GB', () => {
    // 100.2 ms -> 101 ms; at 2048 MB: 0.101 s x 2 GB = 0.202 GB-s.
    expect(gbSeconds(100.2, 2048)).toBeCloseTo(0.202, 12);
    // 0.202 GB-s x $0.0000166667 + 1 request x $0.0000002 = $0.00000356667...
    expect(lambdaCostUsd(0.202, 1, 'x86_64', LAMBDA_PRICES_US_EAST_1)).toBeCloseTo(0.202 * 0.0000166667 + 0.0000002, 15);
    expect(lambdaCostUsd(1, 0, 'arm64', LAMBDA_PRICES_US_EAST_1)).toBe(0.0000133334);
  });

  it("a run's profile sums its stages, and costs its Lambda shares plus the gateway's invocation", () => {
    const p = runProfile([
      { cpuMs: 1000 },
      { cpuMs: 500, lambda: { gbSeconds: 0.5, invocations: 0.25, arch: 'arm64' } },
    ], A, { durationMs: 250, memoryMb: 1024, arch: 'x86_64' });
    expect(p.cpuMs).toBe(1500);
    expect(p.energyJ).toBe(15);
    expect(p.carbonG).toBeCloseTo(0.0015, 9);
    // stage: 0.5 x 0.0000133334 + 0.25 x 2e-7 = 6.7167e-6; gateway: 0.25 GB-s x 0.0000166667 + 2e-7 = 4.366675e-6
    expect(p.costUsd).toBeCloseTo(6.7167e-6 + 4.366675e-6, 10);
    expect(p.assumptions).toBe('test');
    expect(runProfile([{ cpuMs: 2 }], A).costUsd).toBeUndefined();
  });

  it('per 1,000 requests is the mean x 1,000', () => {
    const out = per1000([{ cpuMs: 1, energyJ: 0.01, carbonG: 1e-6, assumptions: 'a' }, { cpuMs: 3, energyJ: 0.03, carbonG: 3e-6, costUsd: 2e-6, assumptions: 'a' }]);
    expect(out.energyJ).toBeCloseTo(20, 9);
    expect(out.carbonG).toBeCloseTo(0.002, 12);
    expect(out.costUsd).toBeCloseTo(0.001, 12);
  });
});

describe('assumptions', () => {
  it("default to codecarbon's 85 W TDP over the cores, and the region's grid from the table", () => {
    const a = assumptionsFromEnv({ AWS_REGION: 'eu-north-1' }, 4);
    expect(a.wattsPerCore).toBe(21.25);
    expect(a.gridGPerKwh).toBe(47);
    expect(a.version).toBe('2026-12-01 cpu=21.25W/core grid=eu-north-1:47');
  });

  it('take the environment over the defaults, and refuse a figure that is not a number', () => {
    const a = assumptionsFromEnv({ ENSEMBLE_CPU_WATTS_PER_CORE: '3.5', ENSEMBLE_GRID_G_PER_KWH: '100', ENSEMBLE_LAMBDA_PRICE_GB_S_ARM: '0.00001' }, 2);
    expect(a.wattsPerCore).toBe(3.5);
    expect(a.gridGPerKwh).toBe(100);
    expect(a.lambdaPrice.gbSecond.arm64).toBe(0.00001);
    expect(a.version).toContain('grid=custom:100');
    expect(() => assumptionsFromEnv({ ENSEMBLE_CPU_TDP_W: 'lots' }, 2)).toThrow(EnsembleError);
    // An unknown region falls back to the default one, and says so in the version.
    expect(assumptionsFromEnv({ AWS_REGION: 'mars-1' }, 2).version).toContain('grid=us-east-1:367.8');
  });
});
