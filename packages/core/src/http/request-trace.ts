import type { Context } from 'hono';
import { inboundTrace } from '../observability/trace-context.js';
import { ATTR, endRequestSpan, startRequestSpan, traceResponse, type RequestTrace } from '../observability/spans.js';

/** The response headers naming the request's trace: W3C's `traceresponse`, and the bare id beside x-ensemble-run-id. */
export const TRACE_RESPONSE_HEADER = 'traceresponse';
export const TRACE_ID_HEADER = 'x-ensemble-trace-id';

/** How an infer request ended, for its span. */
export interface InferOutcome {
  version?: string;
  /** The OIP request's own `id`, when it set one. */
  requestId?: string;
  failure?: { message: string; code?: string };
}

/**
 * The trace of an infer request: the caller's `traceparent`/`tracestate`,
 * else an X-Ray header (the request's, then the host's), else a new one. The
 * span is named for the route and the model when the model is served (a
 * name nobody serves stays out of span names, as it stays out of run records).
 */
export function startInferTrace(c: Context, model: string, served: boolean, hostTraceHeader?: (c: Context) => string | undefined): RequestTrace {
  const inbound = inboundTrace({
    traceparent: c.req.header('traceparent'),
    tracestate: c.req.header('tracestate'),
    xray: [c.req.header('x-amzn-trace-id'), hostTraceHeader?.(c)],
  });
  const route = c.req.param('version') === undefined ? '/v2/models/{name}/infer' : '/v2/models/{name}/versions/{version}/infer';
  const name = served ? `POST /v2/models/${model}/infer` : `POST ${route}`;
  // Attributes only for a span that exists: with tracing off nothing is built but the ids.
  return startRequestSpan(inbound, name, {});
}

/** Name the trace on the response and close the request span. */
export function finishInferTrace(c: Context, t: RequestTrace, res: Response, model: string, outcome: InferOutcome): Response {
  res.headers.set(TRACE_RESPONSE_HEADER, traceResponse(t));
  res.headers.set(TRACE_ID_HEADER, t.traceId);
  if (t.span) {
    const attrs: Record<string, string | number> = {
      [ATTR.httpMethod]: 'POST',
      [ATTR.httpRoute]: c.req.param('version') === undefined ? '/v2/models/{name}/infer' : '/v2/models/{name}/versions/{version}/infer',
      [ATTR.urlPath]: new URL(c.req.url).pathname,
      [ATTR.modelName]: model,
    };
    if (outcome.version) attrs[ATTR.modelVersion] = outcome.version;
    if (outcome.requestId) attrs[ATTR.requestId] = outcome.requestId;
    const runId = res.headers.get('x-ensemble-run-id');
    if (runId) attrs[ATTR.runId] = runId;
    endRequestSpan(t, res.status, attrs, outcome.failure);
  }
  return res;
}
