import { describe, expect, it } from 'vitest';
import { fuzzCases } from '../../src/soak/fuzz.js';
import { formatTable } from '../../src/soak/run.js';

describe('the soak fuzzer', () => {
  it('makes the same cases on every run, covering every kind', () => {
    const a = fuzzCases(400);
    const b = fuzzCases(400);
    expect(a).toHaveLength(400);
    expect(a.map((c) => c.body.toString('base64'))).toEqual(b.map((c) => c.body.toString('base64')));
    expect(new Set(a.map((c) => c.kind)).size).toBeGreaterThanOrEqual(18);
  });

  it('sends binary requests whose declared header length lies about the body', () => {
    const lying = fuzzCases(400).filter((c) => c.kind === 'binary header larger than body');
    expect(lying.length).toBeGreaterThan(0);
    for (const c of lying) expect(Number(c.headers['inference-header-content-length'])).toBeGreaterThan(c.body.length);
  });
});

describe('the soak table', () => {
  it('has one row per phase with its statuses', () => {
    const table = formatTable([{
      name: 'fuzzer', what: 'x', requests: 3, statuses: { 400: 2, 0: 1, '-1': 4 }, wrong: 0, recordsChecked: 2, recordsLost: 1, crashes: 0,
      serverErrorsForClientErrors: 0, maxStallMs: 12.5, rssBeforeMb: 100, rssAfterMb: 120, notes: ['alive afterwards'],
    }]);
    const rows = table.split('\n');
    expect(rows).toHaveLength(3);
    expect(rows[2]).toContain('refused while down: 4, cut off: 1, 400: 2');
    expect(rows[2]).toContain('1 (of 2)');
  });
});
