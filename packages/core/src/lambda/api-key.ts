import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';

/** Paths anyone may call: they say whether the server is up and reveal nothing else. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/v2/health/live', '/v2/health/ready']);

/**
 * The deployed gateway's `guard`: every request except the health probes must
 * carry the API key as `x-api-key: <key>` or `authorization: Bearer <key>`.
 * Refused requests get 401 before the app runs anything or records a run.
 * Without a configured key nothing is served (503): an unset secret must not
 * mean an open endpoint.
 */
export function apiKeyGuard(expected: string | undefined): (c: Context) => Response | undefined {
  const want = expected ? digest(expected) : undefined;
  return (c) => {
    if (PUBLIC_PATHS.has(c.req.path)) return undefined;
    if (!want) {
      return c.json({ error: 'the gateway has no API key configured (set the EnsembleApiKey secret and redeploy)' }, 503);
    }
    const given = presentedKey(c.req.header('x-api-key'), c.req.header('authorization'));
    // Compare digests, not the strings: equal lengths for timingSafeEqual, and no early exit on the first wrong byte.
    if (given !== undefined && timingSafeEqual(digest(given), want)) return undefined;
    return c.json(
      { error: given === undefined ? 'missing API key: send it as x-api-key or Authorization: Bearer' : 'invalid API key' },
      401,
      { 'www-authenticate': 'Bearer' },
    );
  };
}

function presentedKey(xApiKey: string | undefined, authorization: string | undefined): string | undefined {
  if (xApiKey) return xApiKey.trim();
  const m = authorization ? /^Bearer\s+(.+)$/i.exec(authorization.trim()) : null;
  return m ? m[1].trim() : undefined;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
