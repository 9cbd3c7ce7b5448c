import { runLoad } from './load.js';
import type { LoadOptions, LoadResult } from './types.js';

/** The load generator's own process (see runLoadInChild): one run, then exit. */
if (!process.send) throw new Error('load-child must be started with an IPC channel (child_process.fork)');
process.on('disconnect', () => process.exit(0));
process.once('message', (m: { type: 'run'; options: LoadOptions }) => {
  runLoad(m.options).then(
    (result: LoadResult) => process.send!({ type: 'result', result }),
    (e: unknown) => process.send!({ type: 'error', message: e instanceof Error ? e.message : String(e) }),
  );
});
