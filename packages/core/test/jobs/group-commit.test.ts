import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/jobs/group-commit.js';

/** A write that holds each group until released, recording what it got. */
function heldWrites() {
  const groups: number[][] = [];
  const release: (() => void)[] = [];
  const fail: ((e: Error) => void)[] = [];
  const write = (g: number[]) => new Promise<void>((resolve, reject) => { groups.push(g); release.push(resolve); fail.push(reject); });
  return { groups, release, fail, write };
}

const settled = () => new Promise((r) => setImmediate(r));

describe('GroupCommit', () => {
  it('writes a full group at once, and what comes in during a write with the next one', async () => {
    const w = heldWrites();
    // A delay no test waits out: only maxSize and flush() start writes here.
    const gc = new GroupCommit<number>(w.write, { maxDelayMs: 3_600_000, maxSize: 3 });
    const done = [1, 2, 3].map((n) => gc.add(n));
    expect(w.groups).toEqual([[1, 2, 3]]);
    const later = [4, 5].map((n) => gc.add(n));
    expect(w.groups).toHaveLength(1);
    w.release[0]();
    await Promise.all(done);
    await settled();
    // No second wait for the pieces that came during the first write.
    expect(w.groups).toEqual([[1, 2, 3], [4, 5]]);
    w.release[1]();
    await Promise.all(later);
  });

  it('holds a partial group until flush(), which writes it and resolves once nothing waits', async () => {
    const w = heldWrites();
    const gc = new GroupCommit<number>(w.write, { maxDelayMs: 3_600_000, maxSize: 10 });
    const pieces = [gc.add(1), gc.add(2)];
    await settled();
    expect(w.groups).toEqual([]);
    expect(gc.size).toBe(2);
    const flushed = gc.flush();
    expect(w.groups).toEqual([[1, 2]]);
    w.release[0]();
    await flushed;
    await Promise.all(pieces);
    expect(gc.size).toBe(0);
  });

  it('fails the pieces of a failed write only', async () => {
    const w = heldWrites();
    const gc = new GroupCommit<number>(w.write, { maxDelayMs: 3_600_000, maxSize: 2 });
    const first = [gc.add(1), gc.add(2)];
    const second = [gc.add(3), gc.add(4)];
    w.fail[0](new Error('throttled'));
    await expect(first[0]).rejects.toThrow('throttled');
    await expect(first[1]).rejects.toThrow('throttled');
    await settled();
    expect(w.groups).toEqual([[1, 2], [3, 4]]);
    w.release[1]();
    await Promise.all(second);
  });
});
