import {
  ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, createTraceState, trace,
  type Attributes, type Context, type Link, type Span, type SpanContext, type Tracer,
} from '@opentelemetry/api';
import { activeTracer, rootSpanInTrace } from './tracing.js';
import {
  SAMPLED, formatTraceparent, newSpanId, parseTraceparent, traceFromXRay,
  type InboundTrace, type TraceCarrier,
} from './trace-context.js';

/**
 * The spans Ensemble records, in one place: their names, kinds and
 * attributes. With tracing off every function here returns without building
 * a span; a request still gets its trace id (for the run record and the
 * response header) from the inbound context.
 *
 *   POST /v2/models/{model}/infer       SERVER, one per request
 *     stage {stage}                     INTERNAL, one per item per stage: batcher queue to result
 *   batch {stage}                       CLIENT, one per stage call, linked to every item span it served
 *     run {stage}                       SERVER, in the worker process or the stage Lambda
 */

/** Attribute names. Model name and version as Triton's OpenTelemetry mode writes them; HTTP per the semantic conventions. */
export const ATTR = {
  modelName: 'model_name',
  modelVersion: 'model_version',
  requestId: 'request_id',
  runId: 'ensemble.run_id',
  stage: 'ensemble.stage',
  queueWaitMs: 'ensemble.queue_wait_ms',
  computeMs: 'ensemble.compute_ms',
  batchSize: 'ensemble.batch_size',
  batchTraces: 'ensemble.batch.traces',
  failedItems: 'ensemble.batch.failed_items',
  coldStart: 'ensemble.cold_start',
  transport: 'ensemble.transport',
  errorType: 'error.type',
  httpMethod: 'http.request.method',
  httpRoute: 'http.route',
  httpStatus: 'http.response.status_code',
  urlPath: 'url.path',
  urlScheme: 'url.scheme',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  userAgent: 'user_agent.original',
  /** Why a request failed with a 4xx: not `error.type`, which the HTTP conventions keep for server errors. */
  errorCode: 'ensemble.error_code',
} as const;

/** One request's trace: its ids always, its span only while tracing is on. */
export interface RequestTrace {
  traceId: string;
  /** The server span's id (a fresh id with tracing off, so the response header still names this hop). */
  spanId: string;
  /** Trace flags of this hop: sampled only when a span is being recorded. */
  flags: number;
  /** The recording request span, the parent of the request's stage spans. */
  span?: Span;
  context?: Context;
}

/** The `traceresponse` header value: this server's span in the caller's trace. */
export function traceResponse(t: RequestTrace): string {
  return formatTraceparent(t.traceId, t.spanId, t.flags);
}

/**
 * The request's server span, continuing `inbound`. A caller's unsampled
 * traceparent is respected (the SDK's parent-based sampler records nothing);
 * an X-Ray root counts as sampled, since X-Ray's own sampling says nothing
 * of the OTLP export configured here.
 */
export function startRequestSpan(inbound: InboundTrace, name: string, attributes: Attributes): RequestTrace {
  const tracer = activeTracer();
  if (!tracer) return { traceId: inbound.traceId, spanId: newSpanId(), flags: 0 };
  // X-Ray without a Parent names the trace but no span in it: the request span is the trace's root (where the
  // provider's ids are ours to choose), not the child of a parent nobody exported.
  const root = inbound.origin === 'xray' && inbound.parentSpanId === undefined
    ? rootSpanInTrace(inbound.traceId, () => tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, ROOT_CONTEXT))
    : undefined;
  if (root) {
    const sc = root.spanContext();
    return { traceId: sc.traceId, spanId: sc.spanId, flags: sc.traceFlags, span: root, context: trace.setSpan(ROOT_CONTEXT, root) };
  }
  let parent = ROOT_CONTEXT;
  if (inbound.origin !== 'new') {
    parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: inbound.traceId,
      // A provider of someone else's: the request span then hangs off an id of the X-Ray root.
      spanId: inbound.parentSpanId ?? inbound.traceId.slice(16),
      traceFlags: inbound.sampled || inbound.origin === 'xray' ? TraceFlags.SAMPLED : TraceFlags.NONE,
      isRemote: true,
      ...(inbound.tracestate ? { traceState: createTraceState(inbound.tracestate) } : {}),
    });
  }
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  const sc = span.spanContext();
  return { traceId: sc.traceId, spanId: sc.spanId, flags: sc.traceFlags, span, context: trace.setSpan(ROOT_CONTEXT, span) };
}

/** Close the request span with its HTTP status; a 5xx (or any error given) marks it failed. */
export function endRequestSpan(t: RequestTrace, status: number, attributes: Attributes, error?: { message: string; code?: string }): void {
  const span = t.span;
  if (!span) return;
  span.setAttributes(attributes);
  span.setAttribute(ATTR.httpStatus, status);
  // The semantic conventions leave a 4xx unset on a server span, error.type included: the server did its job.
  if (status >= 500 && error) fail(span, error.message, error.code);
  else if (error) span.setAttribute(ATTR.errorCode, error.code ?? String(status));
  span.end();
}

/** An item's span in one stage: from entering the stage's batcher to its result. */
export function startItemSpan(t: RequestTrace | undefined, stage: string): Span | undefined {
  if (!t?.context) return undefined;
  return activeTracer()?.startSpan(`stage ${stage}`, { attributes: { [ATTR.stage]: stage } }, t.context);
}

export function endItemSpan(span: Span, run: { batchSize: number; queueWaitMs: number; computeMs: number }, error?: { message: string; code?: string }): void {
  span.setAttributes({ [ATTR.batchSize]: run.batchSize, [ATTR.queueWaitMs]: round(run.queueWaitMs), [ATTR.computeMs]: round(run.computeMs) });
  if (error) fail(span, error.message, error.code);
  span.end();
}

export function failSpan(span: Span, error: { message: string; code?: string }): void {
  fail(span, error.message, error.code);
  span.end();
}

/** What a stage call answers, as far as its span needs. */
type CallResult = { computeMs: number; coldStart: boolean; outcomes: readonly { ok: boolean }[] };

/**
 * One stage call for a batch, as a span linked to the item span of every
 * request it serves: one batch serves many traces, so it is not parented on
 * any one of them. A batch whose items all belong to one trace is a child of
 * its first item's span, so a lone request's trace shows the call inside it.
 * `call` gets the carrier for the stage (the batch span's traceparent), or
 * none when no item is sampled.
 */
export function traceBatch<T extends CallResult>(
  stage: string, transport: string, items: readonly (SpanContext | undefined)[], call: (carrier?: TraceCarrier) => Promise<T>,
): Promise<T> {
  const tracer = activeTracer();
  // Off (or nothing sampled): the call itself, not even a wrapping promise.
  if (!tracer) return call();
  const sampled = items.filter((c): c is SpanContext => c !== undefined && (c.traceFlags & SAMPLED) !== 0);
  if (sampled.length === 0) return call();
  return recordBatch(tracer, stage, transport, items.length, sampled, call);
}

async function recordBatch<T extends CallResult>(
  tracer: Tracer, stage: string, transport: string, size: number, sampled: SpanContext[], call: (carrier?: TraceCarrier) => Promise<T>,
): Promise<T> {
  const traces = new Set(sampled.map((c) => c.traceId));
  const parent = traces.size === 1 ? trace.setSpanContext(ROOT_CONTEXT, sampled[0]) : ROOT_CONTEXT;
  const links: Link[] = sampled.map((context) => ({ context }));
  const span = tracer.startSpan(`batch ${stage}`, {
    kind: SpanKind.CLIENT,
    links,
    attributes: { [ATTR.stage]: stage, [ATTR.batchSize]: size, [ATTR.batchTraces]: traces.size, [ATTR.transport]: transport },
  }, parent);
  try {
    const result = await call(carrierOf(span.spanContext()));
    // Items that failed inside a call that returned fail their own spans; the call did its job.
    const failed = result.outcomes.reduce((n, o) => n + (o.ok ? 0 : 1), 0);
    span.setAttributes({ [ATTR.computeMs]: round(result.computeMs), [ATTR.coldStart]: result.coldStart, [ATTR.failedItems]: failed });
    span.end();
    return result;
  } catch (e) {
    failSpan(span, errorOf(e));
    throw e;
  }
}

/**
 * A stage instance's span for one batch (a worker process, a stage Lambda),
 * continuing the carrier; on Lambda without one, joining the X-Ray trace.
 * Undefined when tracing is off here or there is nothing to continue.
 */
export function startStageRunSpan(stage: string, carrier: TraceCarrier | undefined, xray?: string): Span | undefined {
  const tracer = activeTracer();
  if (!tracer) return undefined;
  let parent: SpanContext | undefined;
  const tp = parseTraceparent(carrier?.traceparent);
  if (tp) {
    parent = { traceId: tp.traceId, spanId: tp.spanId, traceFlags: tp.flags, isRemote: true };
    if (carrier?.tracestate) parent.traceState = createTraceState(carrier.tracestate);
  } else {
    const x = traceFromXRay(xray);
    if (x) parent = { traceId: x.traceId, spanId: x.parentSpanId ?? x.traceId.slice(16), traceFlags: TraceFlags.SAMPLED, isRemote: true };
  }
  // An untraced batch (nothing sampled upstream) stays untraced: no orphan root spans.
  if (!parent) return undefined;
  return tracer.startSpan(`run ${stage}`, { kind: SpanKind.SERVER, attributes: { [ATTR.stage]: stage } }, trace.setSpanContext(ROOT_CONTEXT, parent));
}

export function endStageRunSpan(span: Span | undefined, result: { outcomes: readonly unknown[]; computeMs: number } | undefined, error?: unknown): void {
  if (!span) return;
  if (result) span.setAttributes({ [ATTR.batchSize]: result.outcomes.length, [ATTR.computeMs]: round(result.computeMs) });
  if (error !== undefined) fail(span, errorOf(error).message, errorOf(error).code);
  span.end();
}

function carrierOf(sc: SpanContext): TraceCarrier {
  const carrier: TraceCarrier = { traceparent: formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags) };
  const state = sc.traceState?.serialize();
  if (state) carrier.tracestate = state;
  return carrier;
}

function fail(span: Span, message: string, code?: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  if (code) span.setAttribute(ATTR.errorType, code);
}

function errorOf(e: unknown): { message: string; code?: string } {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? { message: e.message, code } : { message: e.message };
  }
  return { message: String(e) };
}

function round(ms: number): number { return Math.round(ms * 1000) / 1000; }
