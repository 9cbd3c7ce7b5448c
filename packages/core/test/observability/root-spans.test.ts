import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { inboundTrace } from '../../src/observability/trace-context.js';
import { endRequestSpan, startRequestSpan } from '../../src/observability/spans.js';
import { tracingConfigured, tracingIds, useTracerProvider } from '../../src/observability/tracing.js';

const exporter = new InMemorySpanExporter();
// As startTracing makes its provider: ids from tracingIds().
const provider = new BasicTracerProvider({ idGenerator: tracingIds(), spanProcessors: [new SimpleSpanProcessor(exporter)] });
let undo: () => void;
beforeAll(() => { undo = useTracerProvider(provider, { ids: tracingIds() }); });
afterAll(() => undo());

const ROOT = '1-5759e988-bd862e3fe1be46a994272794';
const TRACE = '5759e988bd862e3fe1be46a994272794';

describe('a request span joining an X-Ray trace', () => {
  it('is the root of the X-Ray trace when the header has no Parent, not the child of a made-up one', () => {
    exporter.reset();
    const t = startRequestSpan(inboundTrace({ xray: [`Root=${ROOT};Sampled=0`] }), 'POST /v2/models/{name}/infer', {});
    endRequestSpan(t, 200, {});
    const [span] = exporter.getFinishedSpans();
    expect(span.spanContext().traceId).toBe(TRACE);
    expect(span.parentSpanContext).toBeUndefined();
    // Ids of spans that are no X-Ray root stay random.
    const other = startRequestSpan(inboundTrace({}), 'POST /v2/models/{name}/infer', {});
    expect(other.traceId).not.toBe(TRACE);
  });

  it("hangs off the X-Ray Parent when the header names one", () => {
    exporter.reset();
    const t = startRequestSpan(inboundTrace({ xray: [`Root=${ROOT};Parent=53995c3f42cd8ad8;Sampled=1`] }), 'POST /v2/models/{name}/infer', {});
    endRequestSpan(t, 200, {});
    const [span] = exporter.getFinishedSpans();
    expect(span.spanContext().traceId).toBe(TRACE);
    expect(span.parentSpanContext?.spanId).toBe('53995c3f42cd8ad8');
  });
});

describe('tracingConfigured', () => {
  it("follows the SDK's switches: OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none turn export off", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
    expect(tracingConfigured(endpoint)).toBe(true);
    expect(tracingConfigured({ ...endpoint, OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingConfigured({ ...endpoint, OTEL_SDK_DISABLED: 'false' })).toBe(true);
    expect(tracingConfigured({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingConfigured({ ...endpoint, OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingConfigured({})).toBe(false);
  });
});
