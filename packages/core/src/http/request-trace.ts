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
  /** The run's id, when the request ran (its response names it in x-ensemble-run-id). */
  runId?: string;
  /** The response was made with the trace's headers already (traceHeaders). */
  named?: boolean;
}

/**
 * The trace of an infer request: the caller's `traceparent`/`tracestate`,
 * else an X-Ray header (the request's, then the host's), else a new one. The
 * span is named for the route, as the HTTP semantic conventions ask
 * (`POST /v2/models/{name}/infer`); the model is in its attributes.
 */
export function startInferTrace(
  c: Context, hostTraceHeader?: (c: Context) => string | undefined,
  header: (name: string) => string | undefined = (name) => c.req.header(name),
): RequestTrace {
  const inbound = inboundTrace({
    traceparent: header('traceparent'),
    tracestate: header('tracestate'),
    xray: [header('x-amzn-trace-id'), hostTraceHeader?.(c)],
  });
  // Attributes only for a span that exists: with tracing off nothing is built but the ids.
  return startRequestSpan(inbound, `POST ${inferRoute(c)}`, {});
}

/** The headers naming the trace, into the plain header record a response is about to be made with. */
export function traceHeaders(t: RequestTrace, headers: Record<string, string>): void {
  headers[TRACE_RESPONSE_HEADER] = traceResponse(t);
  headers[TRACE_ID_HEADER] = t.traceId;
}

/** Name the trace on the response (unless it was made naming it) and close the request span. */
export function finishInferTrace(c: Context, t: RequestTrace, res: Response, model: string, outcome: InferOutcome): Response {
  if (!outcome.named) {
    res.headers.set(TRACE_RESPONSE_HEADER, traceResponse(t));
    res.headers.set(TRACE_ID_HEADER, t.traceId);
  }
  if (t.span) {
    const url = new URL(c.req.url);
    const attrs: Record<string, string | number> = {
      [ATTR.httpMethod]: 'POST',
      [ATTR.httpRoute]: inferRoute(c),
      [ATTR.urlPath]: url.pathname,
      [ATTR.urlScheme]: url.protocol.replace(/:$/, ''),
      [ATTR.serverAddress]: url.hostname,
      [ATTR.modelName]: model,
    };
    if (url.port) attrs[ATTR.serverPort] = Number(url.port);
    const agent = c.req.header('user-agent');
    if (agent) attrs[ATTR.userAgent] = agent;
    if (outcome.version) attrs[ATTR.modelVersion] = outcome.version;
    if (outcome.requestId) attrs[ATTR.requestId] = outcome.requestId;
    const runId = outcome.runId ?? res.headers.get('x-ensemble-run-id');
    if (runId) attrs[ATTR.runId] = runId;
    endRequestSpan(t, res.status, attrs, outcome.failure);
  }
  return res;
}

function inferRoute(c: Context): string {
  return c.req.param('version') === undefined ? '/v2/models/{name}/infer' : '/v2/models/{name}/versions/{version}/infer';
}
