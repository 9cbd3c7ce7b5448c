import { describe, expect, it, vi } from 'vitest';
import { observers, type BatchEvent, type Observer, type RequestEnd } from '../../src/observability/events.js';

const batch: BatchEvent = { pipeline: 'p', version: '1', stage: 's', size: 2, queueMs: 1, callMs: 2, computeMs: 1, coldStart: false, failedItems: 0 };
const end: RequestEnd = { pipeline: 'p', version: '1', httpStatus: 200, durationMs: 3 };

describe('observers', () => {
  it('is nothing when no one observes', () => {
    expect(observers([undefined, undefined])).toBeUndefined();
  });

  it('delivers each event to every observer that listens for it', () => {
    const a: BatchEvent[] = [];
    const b: RequestEnd[] = [];
    const o = observers([{ batch: (e) => a.push(e) }, { requestEnded: (e) => b.push(e) }])!;
    o.batch!(batch);
    o.requestEnded!(end);
    o.requestStarted!({ pipeline: 'p', version: '' });
    expect(a).toEqual([batch]);
    expect(b).toEqual([end]);
  });

  it('delivers worker restarts too', () => {
    const seen: string[] = [];
    const o = observers([{ workerRestarted: (e) => seen.push(`${e.pipeline}/${e.stage} ${e.reason}`) }, { batch: () => undefined }])!;
    o.workerRestarted!({ pipeline: 'p', stage: 's', reason: 'timeout' });
    expect(seen).toEqual(['p/s timeout']);
  });

  it('keeps delivering to the others when one observer throws, and reports it once', () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const seen: BatchEvent[] = [];
      const bad: Observer = { batch: () => { throw new Error('broken'); } };
      const o = observers([bad, { batch: (e) => seen.push(e) }])!;
      o.batch!(batch);
      o.batch!(batch);
      expect(seen).toHaveLength(2);
      expect(error).toHaveBeenCalledTimes(1);
    } finally {
      error.mockRestore();
    }
  });
});
