import { describe, expect, it } from 'vitest';
import { sendBatches } from '../../src/jobs/queue.js';
import { INLINE_REQUEST_BYTES } from '../../src/jobs/types.js';

describe('sendBatches', () => {
  it('keeps SendMessageBatch within 10 messages and its byte limit, in order', () => {
    const small = Array.from({ length: 23 }, (_, i) => `m${i}`);
    expect(sendBatches(small).map((b) => b.length)).toEqual([10, 10, 3]);
    expect(sendBatches(small).flat()).toEqual(small);
    // Inline requests at their largest: 10 of them would be 160 KiB of bodies plus the rest of each message.
    const big = Array.from({ length: 25 }, (_, i) => `${i}`.padEnd(INLINE_REQUEST_BYTES + 200, 'x'));
    const batches = sendBatches(big);
    for (const b of batches) expect(b.reduce((n, x) => n + Buffer.byteLength(x), 0)).toBeLessThanOrEqual(200 * 1024);
    expect(batches.flat()).toEqual(big);
  });

  it('sends a body over the limit alone rather than not at all (SQS then says why)', () => {
    const huge = 'y'.repeat(300 * 1024);
    expect(sendBatches(['a', huge, 'b'])).toEqual([['a'], [huge], ['b']]);
  });
});
