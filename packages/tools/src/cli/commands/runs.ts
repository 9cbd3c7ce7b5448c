import type { Command } from '../args.js';
import type { RunRecord } from '@ensemble/core/storage/types.js';
import { int, str } from '../args.js';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { openEnvironment, usesLocalEmulators } from '../../serve/environment.js';
import { findServer, isConnectionRefused } from '../find-server.js';
import { authHeaders } from '../api-key-header.js';
import { EnsembleError } from '@ensemble/core/errors.js';
import { runLines, summarize, summaryLines } from '../runs-view.js';

export const runsCommand: Command = {
  name: 'runs',
  summary: "List a pipeline's most recent runs, newest first (from the DynamoDB index by pipeline and time).",
  usage: 'runs <pipeline> [--limit 20] [--summary] [--url URL] [--data .ensemble] [--json]',
  help: [
    ['--limit N', 'how many (default 20)'],
    ['--url URL', 'ask this running server (default: the server holding the data folder, wherever it listens); if none answers, read the data folder directly'],
    ['--data DIR', 'local data folder (default .ensemble): its server is asked, or, with none running, the folder is read directly'],
    ['--summary', 'per stage over the last --limit runs: compute and queue p50 / p99, share of compute, energy; energy, carbon and cost per 1,000 requests'],
    ['--json', 'print the records (or the summary) as JSON'],
  ],
  options: { limit: { type: 'string' }, url: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' }, summary: { type: 'boolean' } },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new Error('runs takes one pipeline name');
    const pipeline = positionals[0];
    const limit = int(values.limit, 20, '--limit');
    const server = await findServer(values);
    let runs: RunRecord[] | undefined;
    if (server.explicit || server.found) {
      try {
        // A running local server holds the emulators' database, so ask it.
        const res = await fetch(`${server.url}/v2/models/${encodeURIComponent(pipeline)}/runs?limit=${limit}`, { headers: authHeaders() });
        if (!res.ok) throw new EnsembleError(`${server.url} answered ${res.status}: ${await res.text()}`, res.status === 404 ? 'not_found' : 'bad_gateway');
        runs = ((await res.json()) as { runs: RunRecord[] }).runs;
      } catch (e) {
        // Nothing listens there (any more): the data folder is free to read directly.
        if (!isConnectionRefused(e)) throw e;
      }
    }
    if (!runs) {
      const dataDir = str(values.data, '.ensemble');
      // No server, and no folder a server ever wrote: opening one would only make an empty one here.
      if (!existsSync(dataDir) && usesLocalEmulators()) {
        throw new EnsembleError(`no server is running for data folder ${resolve(dataDir)} and it does not exist: start one (npm start), or name the folder (--data) or the server (--url)`, 'usage');
      }
      const env = await openEnvironment({ dataDir, shareRunningServer: true });
      try { runs = await env.runs.listByPipeline(pipeline, limit); } finally { await env.close(); }
    }
    if (values.summary) {
      const summary = summarize(runs);
      if (values.json) { console.log(JSON.stringify(summary, null, 2)); return; }
      if (!runs.length) { console.log(`no runs of '${pipeline}' yet`); return; }
      for (const line of summaryLines(pipeline, summary)) console.log(line);
      return;
    }
    if (values.json) { console.log(JSON.stringify(runs, null, 2)); return; }
    if (!runs.length) { console.log(`no runs of '${pipeline}' yet`); return; }
    for (const line of runLines(runs)) console.log(line);
  },
};
