import { describe, expect, it } from 'vitest';
import { threadCpuMicros } from '../../src/runtime/process-usage.js';

describe('threadCpuMicros', () => {
  it.runIf(process.platform === 'linux')("reads this thread's CPU time, which work on the thread adds to", () => {
    const before = threadCpuMicros();
    expect(before).toBeTypeOf('number');
    // Work until the process's own count has moved well past a scheduler tick, so the thread's must have moved too.
    const p0 = process.cpuUsage();
    let x = 0;
    while (process.cpuUsage(p0).user < 50_000) for (let i = 0; i < 10_000; i++) x += Math.sqrt(i);
    const after = threadCpuMicros()!;
    expect(x).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(before!);
  });
});
