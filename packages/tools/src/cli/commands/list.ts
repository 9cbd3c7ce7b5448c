import type { Command } from '../args.js';
import { UsageError, str } from '../args.js';
import { findServer, isConnectionRefused } from '../find-server.js';
import { authHeaders } from '../api-key-header.js';
import { loadPipelines } from '@ensemble/core/pipelines/load-all.js';
import { EnsembleError } from '@ensemble/core/errors.js';

/** One pipeline as `list` shows it, from a server or from its manifest. */
export interface ListedPipeline {
  name: string;
  versions: string[];
  /** 'ready', 'not ready' (with the server's reason), or 'not running' (read from the models folder). */
  state: string;
  stages: { name: string; kind: string; maxBatchSize: number; instances: number }[];
}

interface ModelsIndex { models: { name: string; version: string; ready: boolean }[] }
interface ModelMetadata {
  versions: string[];
  stages: { name: string; kind: string; max_batch_size: number; instances: number }[];
  parameters?: { ready?: boolean; reason?: string };
}

export const listCommand: Command = {
  name: 'list',
  summary: 'List the pipelines, their versions, readiness and stages (from the running server, else from the models folder).',
  usage: 'list [--url URL] [--data .ensemble] [--models models] [--json]',
  help: [
    ['--url URL', 'ask this server (default: the one holding the data folder, wherever it listens)'],
    ['--data DIR', 'local data folder whose server to ask (default .ensemble)'],
    ['--models DIR', 'with no server running, read the manifests here (default models)'],
    ['--json', 'print the list as JSON'],
  ],
  options: { url: { type: 'string' }, data: { type: 'string' }, models: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values, positionals }) {
    if (positionals.length) throw new UsageError('list takes no pipeline name');
    const server = await findServer(values);
    let listed: ListedPipeline[] | undefined;
    if (server.explicit || server.found) {
      try {
        listed = await fromServer(server.url);
      } catch (e) {
        // A lock left by a server that is gone, or a --url nothing listens on: the manifests still say what would be served.
        if (!isConnectionRefused(e)) throw e;
        console.error(`no server at ${server.url}: listing the models folder`);
      }
    }
    listed ??= await fromManifests(str(values.models, 'models'));
    if (values.json) { console.log(JSON.stringify(listed, null, 2)); return; }
    if (!listed.length) { console.log('no pipelines'); return; }
    console.log(table(listed));
  },
};

async function fromServer(url: string): Promise<ListedPipeline[]> {
  const index = await getJson<ModelsIndex>(`${url}/v2/models`);
  const out: ListedPipeline[] = [];
  for (const m of index.models) {
    const meta = await getJson<ModelMetadata>(`${url}/v2/models/${encodeURIComponent(m.name)}`);
    const ready = meta.parameters?.ready ?? m.ready;
    const reason = meta.parameters?.reason;
    out.push({
      name: m.name,
      versions: meta.versions,
      state: ready ? 'ready' : `not ready${reason ? ` (${reason})` : ''}`,
      stages: meta.stages.map((s) => ({ name: s.name, kind: s.kind, maxBatchSize: s.max_batch_size, instances: s.instances })),
    });
  }
  return out;
}

async function fromManifests(modelsDir: string): Promise<ListedPipeline[]> {
  const manifests = await loadPipelines(modelsDir);
  return manifests.map((m) => ({
    name: m.name,
    versions: [m.version],
    state: 'not running',
    stages: m.stages.map((s) => ({ name: s.name, kind: s.kind, maxBatchSize: s.batch.maxSize, instances: s.scale.instances })),
  }));
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { headers: authHeaders() });
  const text = await res.text();
  if (!res.ok) throw new EnsembleError(`${url} answered ${res.status}: ${text}`, 'bad_gateway');
  return JSON.parse(text) as T;
}

/** One row per stage; the pipeline's own columns only on its first row. */
function table(listed: ListedPipeline[]): string {
  const rows: string[][] = [['pipeline', 'version', 'state', 'stage', 'kind', 'batch max', 'instances']];
  for (const p of listed) {
    const head = [p.name, p.versions.join(','), p.state];
    if (!p.stages.length) rows.push([...head, '', '', '', '']);
    p.stages.forEach((s, i) => rows.push([...(i === 0 ? head : ['', '', '']), s.name, s.kind, String(s.maxBatchSize), String(s.instances)]));
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}
