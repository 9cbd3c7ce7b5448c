import type { JobStatus } from '@ensemble/core/jobs/types.js';
import { UsageError } from '../args.js';
import { jobRequest } from './job-http.js';

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** One line saying where a job stands. */
export function statusLine(s: JobStatus): string {
  const c = s.counts;
  const done = c.succeeded + c.failed;
  const pct = c.total ? Math.floor((done / c.total) * 100) : 100;
  const width = 30;
  const filled = Math.round((done / Math.max(1, c.total)) * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const rate = s.throughputPerSecond !== undefined ? ` ${s.throughputPerSecond}/s` : '';
  const eta = s.etaSeconds !== undefined ? ` eta ${Math.ceil(s.etaSeconds)} s` : '';
  return `${s.state.padEnd(9)} ${bar} ${String(pct).padStart(3)}% ${done}/${c.total} (queued ${c.queued}, running ${c.running}, failed ${c.failed}${c.cancelled ? `, cancelled ${c.cancelled}` : ''})${rate}${eta}`;
}

/** `ensemble job status <id> [--follow] [--json]`. */
export async function jobStatusCommand(values: Record<string, unknown>, args: string[]): Promise<number> {
  if (args.length !== 1) throw new UsageError('job status takes a job id');
  const get = async () => (await (await jobRequest(values, `/v2/jobs/${encodeURIComponent(args[0])}`)).json()) as JobStatus;
  let s = await get();
  if (values.follow) {
    const tty = process.stderr.isTTY === true;
    let last = '';
    while (!FINAL.has(s.state)) {
      const line = statusLine(s);
      // On a terminal the bar redraws in place; in a log, a line only when something changed.
      if (tty) process.stderr.write(`\r${line}\x1b[K`);
      else if (line !== last) process.stderr.write(`${line}\n`);
      last = line;
      await new Promise((r) => setTimeout(r, 1_000));
      s = await get();
    }
    if (tty) process.stderr.write('\r\x1b[K');
  }
  console.log(values.json ? JSON.stringify(s, null, 2) : statusLine(s));
  return s.state === 'failed' ? 1 : 0;
}

/** `ensemble job cancel <id>`. */
export async function jobCancel(values: Record<string, unknown>, args: string[]): Promise<number> {
  if (args.length !== 1) throw new UsageError('job cancel takes a job id');
  const s = (await (await jobRequest(values, `/v2/jobs/${encodeURIComponent(args[0])}`, { method: 'DELETE' })).json()) as JobStatus;
  console.log(statusLine(s));
  return 0;
}
