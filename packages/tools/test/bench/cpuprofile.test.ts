import { describe, expect, it } from 'vitest';
import { renderProfileSummary, summarizeProfile, type CpuProfile } from '../../src/bench/cpuprofile.js';

const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0, columnNumber: 0 });

/** root -> infer (app.ts) -> JSON.parse (native); root -> put (journal.ts); root -> (idle); root -> (garbage collector). */
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 4, 5, 6] },
    { id: 2, callFrame: frame('infer', 'file:///x/packages/core/src/http/app.ts'), children: [3] },
    { id: 3, callFrame: frame('parse') },
    { id: 4, callFrame: frame('put', 'file:///x/packages/core/src/storage/journal.ts') },
    { id: 5, callFrame: frame('(idle)') },
    { id: 6, callFrame: frame('(garbage collector)') },
  ],
  // Each sample runs for the delta that follows it (the last one's is unknown).
  samples: [2, 3, 3, 4, 5, 6, 2],
  timeDeltas: [0, 1000, 2000, 3000, 4000, 500, 1500],
  startTime: 0,
  endTime: 12000,
};

describe('summarizeProfile', () => {
  it('gives self time by function and by part, native frames counted in the part of their JavaScript caller, idle left out of the shares', () => {
    const s = summarizeProfile(profile);
    expect(s.idleMs).toBe(0.5);
    expect(s.totalMs).toBe(12);
    const fn = Object.fromEntries(s.functions.map((r) => [r.name.replace(/ packages.*/, ''), r.ms]));
    expect(fn).toEqual({ infer: 1, parse: 5, put: 4, '(garbage collector)': 1.5 });
    const part = Object.fromEntries(s.parts.map((r) => [r.name, r.share]));
    expect(part['HTTP/Hono (node:http, @hono/node-server, hono)']).toBeCloseTo(6 / 11.5);
    expect(part['run record: journal (storage/journal.ts)']).toBeCloseTo(4 / 11.5);
    expect(renderProfileSummary(s)).toContain('| run record: journal (storage/journal.ts) | 4 | 34.8% |');
  });
});
