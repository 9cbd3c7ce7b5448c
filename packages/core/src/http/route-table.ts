/**
 * The paths the gateway serves and the methods of each, so that a request
 * with the wrong method on a known path answers 405 with `Allow` (RFC 9110
 * 15.5.6) instead of a 404 that a client reads as "no such model".
 */
export class RouteTable {
  private readonly routes: { pattern: RegExp; method: string }[] = [];

  add(method: string, path: string): void {
    this.routes.push({ pattern: toPattern(path), method: method.toUpperCase() });
  }

  /**
   * The methods served on `path` (one trailing slash ignored, as the router
   * ignores it: `/v2/health/live//` is no route at all), in the order
   * registered; empty for an unknown path.
   */
  allowed(path: string): string[] {
    const p = path.length > 1 ? path.replace(/\/$/, '') : path;
    const out: string[] = [];
    for (const r of this.routes) if (r.pattern.test(p) && !out.includes(r.method)) out.push(r.method);
    // Hono answers HEAD with the GET route.
    if (out.includes('GET') && !out.includes('HEAD')) out.push('HEAD');
    return out;
  }
}

function toPattern(path: string): RegExp {
  const parts = path.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('/')}$`);
}
