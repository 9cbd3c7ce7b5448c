/**
 * How a big request shares the event loop: its rows are cut into items, and
 * its outputs stacked, this many at a time, with a turn of the loop between
 * pieces, so health checks and other requests are served meanwhile. A
 * request this small or smaller pays nothing for it.
 */
export const CHUNK_ITEMS = 2048;

/** Resolves after the event loop has had a turn (timers and I/O included). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
