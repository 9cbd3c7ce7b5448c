import type { Context, MiddlewareHandler } from 'hono';
import type { MetricsEndpoint } from '../observability/endpoint.js';

/** Counts every response the app sends, whatever route (or guard, or error handler) produced it. */
export function countResponses(metrics: MetricsEndpoint): MiddlewareHandler {
  return async (c, next) => {
    await next();
    metrics.httpResponse(c.req.method, c.res.status);
  };
}

/**
 * `GET /metrics` in the Prometheus text format. The series span every
 * pipeline, so behind API keys only a key for all of them (`*`) may scrape;
 * a key scoped to some pipelines gets 403.
 */
export function metricsHandler(metrics: MetricsEndpoint, visible: (c: Context, pipeline: string) => boolean) {
  return async (c: Context): Promise<Response> => {
    if (!visible(c, '*')) return c.json({ error: "metrics cover every pipeline: scrape with an API key for all pipelines ('*')" }, 403);
    const { body, contentType } = await metrics.scrape();
    return c.body(body, 200, { 'content-type': contentType });
  };
}
