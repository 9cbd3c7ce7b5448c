import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { childPids, childRole, peakSampler, sampleServer } from '../../src/bench/process-memory.js';

const children: ChildProcess[] = [];
afterEach(() => { for (const c of children.splice(0)) c.kill('SIGKILL'); });

/** A real child process of this one: a stage-worker-like argv, or a plain one. */
function child(argv: string[]): ChildProcess {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', ...argv], { stdio: 'ignore' });
  children.push(c);
  return c;
}

describe('process memory of a server and its children (from /proc)', () => {
  it.runIf(process.platform === 'linux')('finds the children, names a worker by its stage and the rest by program, and reads their RSS', async () => {
    const worker = child(['ensemble:recognize']);
    const plain = child([]);
    // Wait until both have execed node: before that their argv is still this process's.
    for (let i = 0; i < 100 && ![worker, plain].every((c) => childRole(c.pid!) !== 'unknown' && childPids(process.pid).includes(c.pid!)); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(childPids(process.pid)).toEqual(expect.arrayContaining([worker.pid, plain.pid]));
    expect(childRole(worker.pid!)).toBe('worker recognize');
    expect(childRole(plain.pid!)).toBe('node');

    const now = sampleServer(process.pid);
    expect(now[0]).toMatchObject({ pid: process.pid, role: 'gateway' });
    const w = now.find((s) => s.pid === worker.pid)!;
    expect(w.role).toBe('worker recognize');
    // A Node process is tens of MB resident, never zero and never gigabytes.
    expect(w.rssMb).toBeGreaterThan(5);
    expect(w.rssMb).toBeLessThan(2048);

    const sampler = peakSampler(process.pid, 10);
    const held = Buffer.alloc(64 * 1024 * 1024, 1);
    await new Promise((r) => setTimeout(r, 50));
    const peak = sampler.stop();
    expect(held[held.length - 1]).toBe(1);
    // The 64 MB this process touched while sampled shows in its peak.
    expect(peak.perProcess.get(process.pid)!.rssMb).toBeGreaterThanOrEqual(now[0].rssMb + 60);
    expect(peak.peakTotalMb).toBeGreaterThanOrEqual(peak.perProcess.get(process.pid)!.rssMb);
  });
});
