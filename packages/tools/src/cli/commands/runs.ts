import type { Command } from '../args.js';
import type { RunRecord } from '@ensemble/core/storage/types.js';
import { int, str } from '../args.js';
import { openEnvironment } from '../../serve/environment.js';

export const runsCommand: Command = {
  name: 'runs',
  summary: "List a pipeline's most recent runs, newest first (from the DynamoDB index by pipeline and time).",
  usage: 'runs <pipeline> [--limit 20] [--url http://127.0.0.1:8080] [--data .ensemble] [--json]',
  help: [
    ['--limit N', 'how many (default 20)'],
    ['--url URL', 'ask this running server (default http://127.0.0.1:8080); if none answers, read the data folder directly'],
    ['--data DIR', 'local data folder, when no server is running (default .ensemble)'],
    ['--json', 'print the records as JSON'],
  ],
  options: { limit: { type: 'string' }, url: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new Error('runs takes one pipeline name');
    const pipeline = positionals[0];
    const limit = int(values.limit, 20, '--limit');
    const url = str(values.url, 'http://127.0.0.1:8080');
    let runs: RunRecord[];
    try {
      // A running local server holds the emulator's database lock, so ask it first.
      const res = await fetch(`${url}/v2/models/${encodeURIComponent(pipeline)}/runs?limit=${limit}`);
      if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
      runs = ((await res.json()) as { runs: RunRecord[] }).runs;
    } catch (e) {
      if (!isConnectionRefused(e)) throw e;
      const env = await openEnvironment({ dataDir: str(values.data, '.ensemble') });
      try { runs = await env.runs.listByPipeline(pipeline, limit); } finally { await env.close(); }
    }
    if (values.json) { console.log(JSON.stringify(runs, null, 2)); return; }
    if (!runs.length) { console.log(`no runs of '${pipeline}' yet`); return; }
    console.log(['started', 'id', 'version', 'status', 'ms', 'stages (batch sizes, compute ms)', 'error'].join('\t'));
    for (const r of runs) {
      const stages = r.stages.map((s) => `${s.stage}[${s.batchSizes.join(',')}] ${s.computeMs}${s.coldStart ? ' cold' : ''}`).join('; ');
      console.log([r.startedAt, r.id, r.version, `${r.status} ${r.httpStatus}`, r.durationMs, stages, r.error ?? ''].join('\t'));
    }
  },
};

function isConnectionRefused(e: unknown): boolean {
  const cause = (e as { cause?: { code?: string } })?.cause;
  return cause?.code === 'ECONNREFUSED' || (e instanceof TypeError && /fetch failed/.test(e.message));
}
