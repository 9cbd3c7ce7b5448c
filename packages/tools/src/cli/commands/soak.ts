import type { Command } from '../args.js';
import { int, str, UsageError } from '../args.js';
import { runSoak } from '../../soak/run.js';

export const soakCommand: Command = {
  name: 'soak',
  summary: 'The reliability suite: sustained load, worker and gateway kill -9, SIGTERM and a fuzzer against a real ensemble serve; prints a table and writes it into docs/reliability.md.',
  usage: 'soak [--seconds 15] [--concurrency 64] [--fuzz 400] [--out docs/reliability.md]',
  help: [
    ['--seconds N', 'seconds of load per phase (default 15; the sustained phase runs twice as long); about 2 minutes in all'],
    ['--concurrency N', 'connections in the sustained phase (default 64)'],
    ['--fuzz N', 'malformed requests the fuzzer sends (default 400, at least 300)'],
    ['--out FILE', 'where the table goes (default docs/reliability.md; its marked block is replaced)'],
  ],
  options: { seconds: { type: 'string' }, concurrency: { type: 'string' }, fuzz: { type: 'string' }, out: { type: 'string' } },
  async run({ values, positionals }) {
    if (positionals.length) throw new UsageError(`soak takes no positional arguments, got '${positionals.join(' ')}'`);
    const results = await runSoak({
      root: process.cwd(),
      seconds: int(values.seconds, 15, '--seconds'),
      concurrency: int(values.concurrency, 64, '--concurrency'),
      fuzz: int(values.fuzz, 400, '--fuzz'),
      out: str(values.out, 'docs/reliability.md'),
    });
    const bad = results.some((r) => r.wrong > 0 || r.recordsLost > 0 || r.crashes > 0 || r.serverErrorsForClientErrors > 0 || r.maxStallMs >= 100);
    return bad ? 1 : 0;
  },
};
