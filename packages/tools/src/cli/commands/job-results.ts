import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { UsageError } from '../args.js';
import { jobRequest } from './job-http.js';

/** `ensemble job results <id> [--out FILE]`: one JSON line per input, as the server streams them. */
export async function jobResultsCommand(values: Record<string, unknown>, args: string[]): Promise<number> {
  if (args.length !== 1) throw new UsageError('job results takes a job id');
  const res = await jobRequest(values, `/v2/jobs/${encodeURIComponent(args[0])}/results`);
  const out = typeof values.out === 'string' ? createWriteStream(values.out) : process.stdout;
  let lines = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    for (const b of chunk) if (b === 10) lines++;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  if (out !== process.stdout) {
    await new Promise<void>((r, j) => (out as ReturnType<typeof createWriteStream>).end((e?: Error | null) => (e ? j(e) : r())));
    console.error(`${lines} result lines written to ${values.out as string}`);
  }
  return 0;
}
