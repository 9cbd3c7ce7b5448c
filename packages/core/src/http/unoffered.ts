/**
 * Triton extensions this server does not offer, by the routes their clients
 * call. Each answers 400 saying so, rather than a 404 that tritonclient reports
 * as an unknown model; none is listed in `GET /v2`'s extensions.
 */
export interface UnofferedExtension {
  /** The name Triton lists in its server metadata. */
  extension: string;
  /** Route patterns (Hono syntax), every method. */
  paths: string[];
}

export const UNOFFERED_EXTENSIONS: readonly UnofferedExtension[] = [
  {
    extension: 'system_shared_memory',
    paths: ['/v2/systemsharedmemory/status', '/v2/systemsharedmemory/region/:region/status',
      '/v2/systemsharedmemory/register', '/v2/systemsharedmemory/region/:region/register',
      '/v2/systemsharedmemory/unregister', '/v2/systemsharedmemory/region/:region/unregister'],
  },
  {
    extension: 'cuda_shared_memory',
    paths: ['/v2/cudasharedmemory/status', '/v2/cudasharedmemory/region/:region/status',
      '/v2/cudasharedmemory/register', '/v2/cudasharedmemory/region/:region/register',
      '/v2/cudasharedmemory/unregister', '/v2/cudasharedmemory/region/:region/unregister'],
  },
  { extension: 'logging', paths: ['/v2/logging'] },
  { extension: 'trace', paths: ['/v2/trace/setting', '/v2/models/:name/trace/setting'] },
];

export function notOffered(extension: string, detail = ''): string {
  return `this server does not offer the ${extension} extension${detail ? ` (${detail})` : ''}`;
}
