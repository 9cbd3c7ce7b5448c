import { createServer } from 'node:net';
import { EnsembleError } from '@ensemble/core/errors.js';

/**
 * Binds `port` until `release()`, so that a port in use is an error before
 * minutes of loading, not after. The gateway binds it right after release;
 * port 0 needs no holding (any free port will do then).
 */
export async function reservePort(port: number, host: string): Promise<{ port: number; release(): Promise<void> }> {
  if (port === 0) return { port, release: async () => undefined };
  // Nothing is served while it is held: a health check that connects early is closed at once, and must not
  // hold the release (close() waits for open connections) and with it the whole start.
  const probe = createServer((socket) => socket.destroy());
  await new Promise<void>((res, rej) => {
    probe.once('error', (e: NodeJS.ErrnoException) => {
      rej(e.code === 'EADDRINUSE'
        ? new EnsembleError(`port ${port} on ${host} is already in use (pick another with --port)`, 'usage', { cause: e })
        : new EnsembleError(`cannot listen on ${host}:${port}: ${e.message}`, 'usage', { cause: e }));
    });
    probe.listen(port, host, () => res());
  });
  let released: Promise<void> | undefined;
  return {
    port,
    release: () => (released ??= new Promise<void>((r) => probe.close(() => r()))),
  };
}
