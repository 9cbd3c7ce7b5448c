import { randomBytes } from 'node:crypto';
import { trace, type Tracer, type TracerProvider } from '@opentelemetry/api';

/**
 * Whether this process records spans, and where they go. Tracing is on only
 * when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or when a provider is installed (a
 * test's in-memory exporter). Off, `activeTracer()` is undefined and callers
 * build no span at all: the SDK and the exporter are loaded only when on
 * (dynamic import), so a deployment without tracing never pays their load time.
 */

type Env = Record<string, string | undefined>;

/** The instrumentation scope every Ensemble span carries. */
export const TRACER_NAME = 'ensemble';

interface Installed {
  tracer: Tracer;
  /** Started from the environment by startTracing (stopTracing ends only that, never a provider handed in). */
  fromEnv: boolean;
  /** Export what is buffered; resolves when sent (or failed: tracing never fails a request). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
  /** The provider takes its ids from RootTraceIds (rootSpanInTrace works). */
  ownIds: boolean;
}

let installed: Installed | undefined;
let starting: Promise<boolean> | undefined;

/** The tracer to build spans with, or undefined when tracing is off. */
export function activeTracer(): Tracer | undefined {
  return installed?.tracer;
}

/**
 * Whether the environment asks for OTLP export: an endpoint is set, and
 * neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none turns it off
 * (the SDK configuration spec's switches; another exporter than otlp is not
 * offered here, and is refused at start).
 */
export function tracingConfigured(env: Env = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (exporters.includes('none')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/**
 * The ids of the provider this module makes: random, as the SDK's, except a
 * root span started through `rootSpanInTrace`, which gets the trace id asked
 * for (an X-Ray trace with no parent segment: the request span is then the
 * trace's root instead of hanging off a parent that does not exist).
 */
export class RootTraceIds {
  private next: string | undefined;
  generateTraceId(): string {
    const id = this.next;
    this.next = undefined;
    return id ?? randomBytes(16).toString('hex');
  }
  generateSpanId(): string { return randomBytes(8).toString('hex'); }
  /** `start` (which starts one root span, synchronously) with `traceId` as that span's trace id. */
  rootSpanInTrace<T>(traceId: string, start: () => T): T {
    this.next = traceId;
    try { return start(); } finally { this.next = undefined; }
  }
}

const rootTraceIds = new RootTraceIds();

/** Start a root span in `traceId` when the installed provider takes its ids from here; undefined when it does not. */
export function rootSpanInTrace<T extends { spanContext(): { traceId: string } }>(traceId: string, start: () => T): T | undefined {
  if (!installed?.ownIds) return undefined;
  const span = rootTraceIds.rootSpanInTrace(traceId, start);
  return span.spanContext().traceId === traceId ? span : undefined;
}

/**
 * Turn tracing on if the environment asks for it: an OTLP/HTTP exporter
 * behind a batch span processor, the resource's service.name from
 * OTEL_SERVICE_NAME (else `defaultService`) and OTEL_RESOURCE_ATTRIBUTES.
 * Resolves to whether tracing is on. Safe to call more than once.
 */
export function startTracing(defaultService: string, env: Env = process.env): Promise<boolean> {
  if (installed) return Promise.resolve(true);
  if (!tracingConfigured(env)) return Promise.resolve(false);
  starting ??= (async () => {
    const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { defaultResource, detectResources, envDetector, resourceFromAttributes }] = await Promise.all([
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
    ]);
    // OTEL_RESOURCE_ATTRIBUTES (read by the env detector), then OTEL_SERVICE_NAME over it, as the spec orders them.
    const service = env.OTEL_SERVICE_NAME?.trim();
    const resource = defaultResource()
      .merge(resourceFromAttributes({ 'service.name': defaultService }))
      .merge(detectResources({ detectors: [envDetector] }))
      .merge(service ? resourceFromAttributes({ 'service.name': service }) : null);
    // The URL from `env` (the exporter itself would read process.env only); headers, timeout and the
    // batch processor's settings still come from their OTEL_* variables.
    const exporter = new OTLPTraceExporter({ url: tracesUrl(env) });
    const provider = new BasicTracerProvider({ resource, idGenerator: rootTraceIds, spanProcessors: [new BatchSpanProcessor(exporter)] });
    install(provider, true, () => provider.forceFlush(), () => provider.shutdown(), true);
    return true;
  })().catch((e: unknown) => {
    // Tracing is an aid, never a reason not to serve.
    console.error(`[ensemble] tracing not started: ${e instanceof Error ? e.message : String(e)}`);
    return false;
  }).finally(() => { starting = undefined; });
  return starting;
}

/** The traces endpoint: the signal's own variable as given, else the base endpoint with /v1/traces appended. */
export function tracesUrl(env: Env): string {
  const own = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (own) return own;
  return `${(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').trim().replace(/\/+$/, '')}/v1/traces`;
}

/**
 * Record spans through `provider` (tests: an in-memory exporter; an
 * embedding application: its own SDK setup). Returns what undoes it.
 */
export function useTracerProvider(
  provider: TracerProvider & { forceFlush?: () => Promise<void>; shutdown?: () => Promise<void> },
  opts: { ids?: RootTraceIds } = {},
): () => void {
  // `ids`: the provider was made with `idGenerator: tracingIds()`, so X-Ray roots without a parent become root spans.
  install(provider, false, () => provider.forceFlush?.() ?? Promise.resolve(), () => provider.shutdown?.() ?? Promise.resolve(), opts.ids === rootTraceIds);
  return () => { installed = undefined; trace.disable(); };
}

/** The id generator to give a provider passed to useTracerProvider, for the same root spans as the one made here. */
export function tracingIds(): RootTraceIds { return rootTraceIds; }

function install(provider: TracerProvider, fromEnv: boolean, flush: () => Promise<void>, shutdown: () => Promise<void>, ownIds = false): void {
  // Global too, so a stage module's own OpenTelemetry spans join the same traces.
  trace.disable();
  trace.setGlobalTracerProvider(provider);
  installed = { tracer: provider.getTracer(TRACER_NAME), fromEnv, flush: quiet(flush), shutdown: quiet(shutdown), ownIds };
}

/** Export buffered spans now (a Lambda instance is frozen once its handler returns). */
export function flushTracing(): Promise<void> {
  return installed?.flush() ?? Promise.resolve();
}

/** Export what is buffered and stop recording, if startTracing started it; a provider handed in is only flushed. */
export async function stopTracing(): Promise<void> {
  const was = installed;
  if (!was) return;
  if (!was.fromEnv) { await was.flush(); return; }
  installed = undefined;
  trace.disable();
  await was.shutdown();
}

function quiet(fn: () => Promise<void>): () => Promise<void> {
  return () => fn().catch((e: unknown) => console.error(`[ensemble] exporting spans failed: ${e instanceof Error ? e.message : String(e)}`));
}
