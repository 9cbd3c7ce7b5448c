import type { Params, Result, Router } from 'hono/router';
import { RegExpRouter } from 'hono/router/reg-exp-router';
import { SmartRouter } from 'hono/router/smart-router';
import { TrieRouter } from 'hono/router/trie-router';

/**
 * An infer path of a pipeline: `/v2/models/{name}/infer` or
 * `/v2/models/{name}/versions/{version}/infer`, the name without a dot (a
 * dotted name is a stage model's, routed by its own pattern). Hono hands the
 * router the path as sent (percent-encoded), trailing slash removed.
 */
const INFER_PATH = /^\/v2\/models\/([^/.]+)\/(?:versions\/([^/]+)\/)?infer$/;

interface Template<T> {
  handlers: T[];
  /** Per handler, which of the path's parameters it takes (the middleware none, the route name and version). */
  takes: ('name' | 'version')[][];
}

/**
 * Hono's own router, with the infer routes answered without a search.
 * The gateway's route table is one that Hono's RegExpRouter declines
 * (`/v2/models/stats` beside `/v2/models/:name/...`), so requests go through
 * TrieRouter's search, which showed in the gateway's profile on every infer
 * request. Every dot-free model name matches the same handlers there (the
 * middleware and the pipeline's infer route), so the first infer request of
 * each form is searched and its handlers kept, and later ones are answered
 * from them with their own name and version. Any other answer shape (another
 * router's) is never kept: those requests are searched as before.
 */
export class InferRouter<T> implements Router<T> {
  readonly name = 'InferRouter';
  private readonly templates: (Template<T> | undefined)[] = [undefined, undefined];
  /** Some route other than the two infer routes and the middleware may take an infer path of some names: search them all. */
  private overlapped = false;

  constructor(private readonly inner: Router<T> = new SmartRouter<T>({ routers: [new RegExpRouter<T>(), new TrieRouter<T>()] })) {}

  add(method: string, path: string, handler: T): void {
    if ((method === 'POST' || method === 'ALL') && mayTakeInferPaths(path)) this.overlapped = true;
    this.inner.add(method, path, handler);
  }

  match(method: string, path: string): Result<T> {
    const m = method === 'POST' && !this.overlapped ? INFER_PATH.exec(path) : null;
    if (!m) return this.inner.match(method, path);
    const form = m[2] === undefined ? 0 : 1;
    const t = this.templates[form];
    if (t) {
      const out: [T, Params][] = new Array(t.handlers.length);
      for (let i = 0; i < t.handlers.length; i++) {
        const params: Params = {};
        for (const k of t.takes[i]) params[k] = k === 'name' ? m[1] : m[2];
        out[i] = [t.handlers[i], params];
      }
      return [out];
    }
    const r = this.inner.match(method, path);
    this.templates[form] = templateOf(r, m[1], m[2]);
    return r;
  }
}

/** The handlers of a search's answer and the parameters each took, if the answer is TrieRouter's shape and took only this path's name and version. */
function templateOf<T>(r: Result<T>, name: string, version: string | undefined): Template<T> | undefined {
  if (r.length !== 1) return undefined;
  const handlers: T[] = [];
  const takes: ('name' | 'version')[][] = [];
  for (const [handler, params] of r[0] as [T, Params][]) {
    if (typeof params !== 'object' || params === null) return undefined;
    const keys: ('name' | 'version')[] = [];
    for (const k of Object.keys(params)) {
      if (k === 'name' && params[k] === name) keys.push('name');
      else if (k === 'version' && version !== undefined && params[k] === version) keys.push('version');
      else return undefined;
    }
    handlers.push(handler);
    takes.push(keys);
  }
  return { handlers, takes };
}

const INFER_ROUTES = new Set(['/v2/models/:name/infer', '/v2/models/:name/versions/:version/infer']);
/** Plain names a custom name pattern is tried on: one that takes any of them could take others' infer paths. */
const PLAIN_NAMES = ['a', 'demo', 'A-1_b', 'stats'];

/**
 * Whether a route other than the infer routes could answer an infer path of
 * a dot-free name for some names but not others (a static name, a pattern,
 * a wildcard): then no one answer stands for every name. A custom pattern
 * that needs a dot (the stage models') takes none of them.
 */
function mayTakeInferPaths(path: string): boolean {
  if (path === '*' || path === '/*' || INFER_ROUTES.has(path)) return false;
  const segs = path.replace(/^\//, '').split('/');
  if (segs[0] !== 'v2' && !segs[0].startsWith(':') && segs[0] !== '*') return false;
  if (segs.some((x) => x.includes('*'))) return true;
  const shapes = [['v2', 'models', undefined, 'infer'], ['v2', 'models', undefined, 'versions', undefined, 'infer']];
  return shapes.some((shape) => shape.length === segs.length && shape.every((want, i) => {
    const seg = segs[i];
    if (!seg.startsWith(':')) return want === undefined || seg === want;
    const custom = /^:[^{]*\{(.*)\}$/.exec(seg);
    if (!custom) return true;
    const re = new RegExp(`^(?:${custom[1]})$`);
    return PLAIN_NAMES.some((n) => re.test(n));
  }));
}
