import { EnsembleError } from '@ensemble/core/errors.js';
import { findServer, isConnectionRefused } from '../find-server.js';
import { authHeaders } from '../api-key-header.js';

/** The flags every job command takes to find its server, as `ensemble infer` does (and ENSEMBLE_API_KEY, sent as x-api-key). */
export const SERVER_OPTIONS = { url: { type: 'string' }, data: { type: 'string' } } as const;
export const SERVER_HELP: [string, string][] = [
  ['--url URL', 'server (default: the one holding the data folder, wherever it listens; else http://127.0.0.1:8080); ENSEMBLE_API_KEY is sent as its key'],
  ['--data DIR', 'local data folder whose server to find (default .ensemble)'],
];

/** One request to the server's job API; an error answer becomes an EnsembleError with the server's words. */
export async function jobRequest(values: Record<string, unknown>, path: string, init: RequestInit = {}): Promise<Response> {
  const server = await findServer(values);
  let res: Response;
  try {
    res = await fetch(`${server.url}${path}`, { ...init, headers: { 'content-type': 'application/json', ...authHeaders(), ...(init.headers as Record<string, string> | undefined) } });
  } catch (e) {
    if (isConnectionRefused(e)) throw new EnsembleError(`no server at ${server.url}: start one with npm start`, 'not_ready');
    throw e;
  }
  if (!res.ok) {
    const text = await res.text();
    let msg = text;
    try { msg = (JSON.parse(text) as { error?: string }).error ?? text; } catch { /* not JSON: as it came */ }
    throw new EnsembleError(`${init.method ?? 'GET'} ${path} answered ${res.status}: ${msg}`, res.status === 404 ? 'not_found' : res.status < 500 ? 'invalid_input' : 'internal');
  }
  return res;
}
