import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { BadRequestError } from '../errors.js';

/** Paths anyone may call: they say whether the server is up and reveal nothing else. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/v2/health/live', '/v2/health/ready']);

/** One accepted key and the pipelines it may use ('*': all of them). */
export interface ApiKeyScope {
  key: string;
  pipelines: '*' | ReadonlySet<string>;
}

/**
 * The keys a gateway accepts: `ENSEMBLE_API_KEY` (one key, every pipeline)
 * and `ENSEMBLE_API_KEYS`, keys scoped to pipelines, separated by `;`, each
 * `<key>=<pipeline>,<pipeline>` or `<key>=*`:
 * `ENSEMBLE_API_KEYS='k1=demo,ocr;k2=*'`. A key ends at its last `=`
 * (pipeline names have none, base64 keys may), so a key cannot hold `;`.
 */
export function parseApiKeys(single: string | undefined, scoped: string | undefined): ApiKeyScope[] {
  const out: ApiKeyScope[] = [];
  if (single?.trim()) out.push({ key: single.trim(), pipelines: '*' });
  for (const entry of (scoped ?? '').split(';').map((s) => s.trim()).filter(Boolean)) {
    const at = entry.lastIndexOf('=');
    const key = at > 0 ? entry.slice(0, at).trim() : '';
    const names = at > 0 ? entry.slice(at + 1).split(',').map((s) => s.trim()).filter(Boolean) : [];
    if (!key || !names.length) {
      throw new BadRequestError(`ENSEMBLE_API_KEYS: '${redact(entry)}' is not <key>=<pipeline>[,<pipeline>...] or <key>=*`);
    }
    out.push({ key, pipelines: names.includes('*') ? '*' : new Set(names) });
  }
  return out;
}

export interface ApiKeyOptions {
  /**
   * With no key configured: true (Lambda) serves nothing but health (503),
   * since an unset secret must not mean an open endpoint; false (a local
   * server) lets everything through.
   */
  required: boolean;
}

/** The guard for createApp, and what it decided about each request, for the routes that list pipelines. */
export interface ApiKeyAccess {
  /** Undefined when there is nothing to check (no keys and none required): no middleware on the request path. */
  guard: ((c: Context) => Response | undefined) | undefined;
  /** Whether the request's key may see `pipeline` (always, without keys); `'*'`: whether it may see every pipeline. */
  visible: (c: Context, pipeline: string) => boolean;
}

/**
 * Every request except the health probes must carry an accepted key as
 * `x-api-key: <key>` or `authorization: Bearer <key>`, or gets 401 before
 * the app runs anything or records a run. A key scoped to some pipelines
 * gets 403 on other pipelines' routes, and sees only its own in listings.
 */
export function apiKeyAccess(keys: ApiKeyScope[], opts: ApiKeyOptions): ApiKeyAccess {
  const accepted = keys.map((k) => ({ digest: digest(k.key), pipelines: k.pipelines }));
  const scopes = new WeakMap<Request, '*' | ReadonlySet<string>>();
  const guard = (c: Context): Response | undefined => {
    if (PUBLIC_PATHS.has(c.req.path)) return undefined;
    if (!accepted.length) {
      if (!opts.required) return undefined;
      return c.json({ error: 'the gateway has no API key configured (set the EnsembleApiKey secret and redeploy)' }, 503);
    }
    const given = presentedKey(c.req.header('x-api-key'), c.req.header('authorization'));
    const scope = given === undefined ? undefined : match(digest(given));
    if (!scope) {
      return c.json(
        { error: given === undefined ? 'missing API key: send it as x-api-key or Authorization: Bearer' : 'invalid API key' },
        401,
        { 'www-authenticate': 'Bearer' },
      );
    }
    scopes.set(c.req.raw, scope);
    const model = modelOfPath(c.req.path);
    if (model !== undefined && scope !== '*' && !scope.has(model)) {
      return c.json({ error: `this API key may not use model '${model}'` }, 403);
    }
    return undefined;
  };
  // Every accepted key is compared, digests not strings: equal lengths for timingSafeEqual, no early exit.
  const match = (given: Buffer): '*' | ReadonlySet<string> | undefined => {
    let found: '*' | ReadonlySet<string> | undefined;
    for (const k of accepted) if (timingSafeEqual(given, k.digest) && found === undefined) found = k.pipelines;
    return found;
  };
  const visible = (c: Context, pipeline: string): boolean => {
    const scope = scopes.get(c.req.raw);
    return scope === undefined || scope === '*' || scope.has(pipeline);
  };
  return { guard: accepted.length || opts.required ? guard : undefined, visible };
}

/** The single-key guard: the key (or nothing served without one). */
export function apiKeyGuard(expected: string | undefined): (c: Context) => Response | undefined {
  return apiKeyAccess(parseApiKeys(expected, undefined), { required: true }).guard!;
}

/**
 * The pipeline a /v2/models/<name>[/...] path is about: a stage model
 * `<pipeline>.<stage>` is its pipeline's. `/v2/models/stats` is the
 * statistics of every model (each listed only if visible), not a model.
 */
function modelOfPath(path: string): string | undefined {
  if (path === '/v2/models/stats') return undefined;
  const m = /^\/v2\/models\/([^/]+)/.exec(path);
  if (!m) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(m[1]);
  } catch {
    name = m[1];
  }
  const dot = name.indexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
}

function presentedKey(xApiKey: string | undefined, authorization: string | undefined): string | undefined {
  if (xApiKey) return xApiKey.trim();
  const m = authorization ? /^Bearer\s+(.+)$/i.exec(authorization.trim()) : null;
  return m ? m[1].trim() : undefined;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** An entry as an error may show it: the key itself left out. */
function redact(entry: string): string {
  const at = entry.lastIndexOf('=');
  return at > 0 ? `…${entry.slice(at)}` : '…';
}
