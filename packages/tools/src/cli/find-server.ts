import { dataFolderHolder } from '../serve/data-lock.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/**
 * The server to talk to: --url when given, else the one holding the data
 * folder (its lock file says where it listens, whatever the port).
 */
export async function findServer(values: Record<string, unknown>): Promise<{ url: string; explicit: boolean; found: boolean }> {
  if (typeof values.url === 'string') return { url: values.url.replace(/\/+$/, ''), explicit: true, found: false };
  const holder = await dataFolderHolder(typeof values.data === 'string' ? values.data : '.ensemble');
  if (holder?.url) return { url: holder.url, explicit: false, found: true };
  return { url: DEFAULT_URL, explicit: false, found: false };
}

/** fetch() failing to connect at all (nothing listens there), as opposed to an HTTP answer. */
export function isConnectionRefused(e: unknown): boolean {
  const cause = (e as { cause?: { code?: string } })?.cause;
  return cause?.code === 'ECONNREFUSED' || (e instanceof TypeError && /fetch failed/.test(e.message));
}
