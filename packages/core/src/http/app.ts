import { runProfile } from '../observability/profile.js';
import { lambdaFunctionOf, processAssumptions } from '../observability/assumptions.js';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Hono, type Context } from 'hono';
import type { LoadedPipeline, PipelineRegistry } from '../pipelines/registry.js';
import type { TransportKind } from '../transport/types.js';
import type { Finding, RunRecord, RunStore, StageRunRecord } from '../storage/types.js';
import type { Observer } from '../observability/events.js';
import type { Manifest } from '../manifest/types.js';
import type { Tensor } from '../tensor/types.js';
import type { InferRequestJson } from '../tensor/protocol.js';
import {
  INFERENCE_HEADER_CONTENT_LENGTH, decodeInferRequest, encodeInferResponse, parseHeaderLength, parseInferRequestJson,
  wantsBinaryOutput,
} from '../tensor/codec.js';
import { BadRequestError, MethodNotAllowedError, NotFoundError, clip, type EnsembleError } from '../errors.js';
import { isRunId } from '../storage/run-id.js';
import { MAX_TIMER_MS } from '../deadline.js';
import { RunFailure } from '../executor/executor.js';
import { jsonEncodable } from '../tensor/json-data.js';
import { rawBinaryTensors, rawInputTensors } from '../manifest/raw-input.js';
import { readBody } from './body.js';
import { validateInputs } from '../manifest/validate-inputs.js';
import { modelMetadata, serverMetadata, unreadableMetadata } from './metadata.js';
import { accessLog, noteRequest } from './access-log.js';
import { registerModelRoutes } from './model-routes.js';
import type { ModelStatistics } from '../observability/statistics.js';
import { errorResponse, httpError } from './errors.js';
import { countResponses, metricsHandler } from './metrics-route.js';
import type { MetricsEndpoint } from '../observability/endpoint.js';
import { compression, encodedResponse } from './compression.js';
import { RouteTable } from './route-table.js';
import { InferRouter } from './infer-router.js';
import { UNOFFERED_EXTENSIONS, notOffered } from './unoffered.js';
import { classificationsAsked, classifyOutput } from './classification.js';
import { registerJobRoutes } from './jobs-routes.js';
import { registerRepositoryRoutes, type ModelRepository } from './repository-routes.js';
import type { Jobs } from '../jobs/service.js';
import { finishInferTrace, startInferTrace, traceHeaders, type InferOutcome } from './request-trace.js';
import type { RequestTrace } from '../observability/spans.js';

export interface AppOptions {
  registry: PipelineRegistry;
  runs: RunStore;
  /** Recorded in run records: which transport ran the stages. */
  transport?: TransportKind;
  /**
   * Milliseconds this request may still run, if the host imposes a limit (a
   * Lambda's remaining time): the request then ends with 504 and its run record
   * in time, instead of being killed with neither.
   */
  remainingMs?: (c: Context) => number | undefined;
  /** Runs before any route; return a Response to refuse (auth). */
  guard?: (c: Context) => Response | undefined | Promise<Response | undefined>;
  /** Whether the request may see a pipeline (a scoped API key): listings leave out the others. */
  visible?: (c: Context, pipeline: string) => boolean;
  /** Where the access log goes, one line per request (default: no access log). */
  log?: (line: string) => void;
  /**
   * Loading and unloading pipelines from their folders, for the model
   * repository routes (`ensemble serve`); without it those routes are not served.
   */
  repository?: ModelRepository;
  /** Batch jobs (docs/jobs.md); without it the job routes are not served. */
  jobs?: Jobs;
  /** Triton's statistics extension, counted from the registry's observer events; without it /stats is not served. */
  statistics?: ModelStatistics;
  /**
   * The X-Ray trace header the host gives this request (Lambda's
   * `_X_AMZN_TRACE_ID`): its trace is joined when the request has no traceparent.
   */
  hostTraceHeader?: (c: Context) => string | undefined;
  /** Counts every response and serves `GET /metrics` (Prometheus); without it there is no such route. */
  metrics?: MetricsEndpoint;
  /**
   * Sub-apps served beside the protocol routes (the browser console). A
   * `public` one answers before the guard (pages and scripts that reveal
   * nothing; their data comes from guarded routes), the others after it.
   */
  mounts?: AppMount[];
}

export interface AppMount {
  app: Hono;
  public?: boolean;
}

export type { ModelRepository } from './repository-routes.js';

/**
 * The gateway: one Hono app speaking the Open Inference Protocol v2, served by
 * @hono/node-server locally and by hono/aws-lambda on Lambda.
 */
export function createApp({ registry, runs, transport = 'worker-pool', guard, visible = () => true, remainingMs, log, repository, jobs, statistics, hostTraceHeader, metrics, mounts = [] }: AppOptions): Hono {
  // Read once, at start: a bad figure in the environment is a start-up error, not every request's.
  const assumptions = processAssumptions();
  const gatewayFunction = lambdaFunctionOf();
  // strict: false, so `/v2/` and `/v2/models/demo/` are the routes without the slash.
  // InferRouter: Hono's router, with infer requests answered without a search (see there).
  const app = new Hono({ strict: false, router: new InferRouter() });

  // First, so requests the guard refuses are logged and counted too.
  if (log) app.use('*', accessLog(log));
  // What the access line says about a request; with no access log, nothing to keep.
  const note: typeof noteRequest = log ? noteRequest : () => undefined;
  app.use('*', compression());
  if (metrics) app.use('*', countResponses(metrics));
  for (const m of mounts) if (m.public) app.route('/', m.app);

  if (guard) {
    app.use('*', async (c, next) => {
      const refused = await guard(c);
      if (refused) return refused;
      await next();
    });
  }

  if (metrics) app.get('/metrics', metricsHandler(metrics, visible));
  for (const m of mounts) if (!m.public) app.route('/', m.app);

  app.get('/v2/health/live', (c) => c.json({ live: true }));
  app.get('/v2/health/ready', (c) => {
    const ready = registry.allReady();
    return c.json({ ready }, ready ? 200 : 503);
  });
  app.get('/v2', (c) => c.json(serverMetadata(['classification', ...(repository ? ['model_repository'] : []), ...(statistics ? ['statistics'] : [])])));
  app.get('/v2/models', (c) => c.json({
    models: registry.names().filter((n) => visible(c, n)).map((n) => {
      const { ready, reason } = registry.status(n);
      return { name: n, version: registry.known(n)?.version ?? '', ready, ...(ready || reason === undefined ? {} : { reason }) };
    }),
  }));

  // Before the pipeline routes: /v2/models/stats and stage models' dotted names are theirs.
  registerModelRoutes(app, { registry, visible, statistics });
  for (const base of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.get(base, (c) => {
      const name = c.req.param('name') ?? '';
      const m = registry.known(name, c.req.param('version'));
      return c.json(m ? modelMetadata(m, registry.status(name)) : unreadableMetadata(name, registry.status(name)));
    });
    app.get(`${base}/ready`, (c) => {
      const name = c.req.param('name') ?? '';
      registry.known(name, c.req.param('version'));
      const ready = registry.isReady(name);
      return c.json({ name, ready }, ready ? 200 : 503);
    });
    app.post(`${base}/infer`, (c) => tracedInfer(c));
  }

  if (repository) registerRepositoryRoutes(app, { registry, repository, visible });

  app.get('/v2/runs/:id', async (c) => {
    const id = c.req.param('id');
    // Anything we never hand out is answered here: DynamoDB would refuse a key over 2 KB with its own words.
    if (!isRunId(id)) throw new BadRequestError(`'${clip(id, 64)}' is not a run id (a UUID, as in the x-ensemble-run-id header)`);
    const rec = await runs.get(id);
    // Another pipeline's run is, for this key, no run at all.
    if (!rec || !visible(c, rec.pipeline)) throw new NotFoundError(`no run '${id}'`);
    return c.json(rec);
  });
  app.get('/v2/models/:name/runs', async (c) => {
    registry.known(c.req.param('name'));
    const limit = Math.min(Math.max(Number(c.req.query('limit') ?? 20) || 20, 1), 1000);
    return c.json({ runs: await runs.listByPipeline(c.req.param('name'), limit) });
  });

  if (jobs) registerJobRoutes(app, { registry, jobs, visible });

  // After every route served: an extension a later version offers takes its routes over by being registered first.
  for (const { extension, paths } of UNOFFERED_EXTENSIONS) {
    for (const path of paths) app.all(path, () => { throw new BadRequestError(notOffered(extension)); });
  }

  // Every route is registered by now; the extensions refused above answer every method, so they are left out.
  const table = new RouteTable();
  for (const r of app.routes) if (r.method !== 'ALL') table.add(r.method, r.path);
  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    const allow = table.allowed(path);
    if (allow.length) {
      return errorResponse(c, httpError(new MethodNotAllowedError(`${c.req.method} is not served on ${clip(path)}; use ${allow.join(' or ')}`, allow)));
    }
    return c.json({ error: `no route for ${c.req.method} ${clip(path)}` }, 404);
  });
  app.onError((err, c) => errorResponse(c, httpError(err)));

  /** An infer request inside its trace: continued or started here, named on the response, kept in the run record. */
  async function tracedInfer(c: Context): Promise<Response> {
    const name = c.req.param('name') ?? '';
    let known: unknown;
    try {
      registry.known(name, c.req.param('version'));
    } catch (err) {
      known = err;
    }
    const header = headerReader(c);
    const trace = startInferTrace(c, hostTraceHeader, header);
    const outcome: InferOutcome = {};
    let res: Response;
    try {
      res = known === undefined ? await infer(c, trace, outcome, header) : notServed(c, known, outcome);
    } catch (err) {
      // Answered here as the app's error handler would, so the span ends with the error and the response names the trace.
      const h = httpError(err);
      return finishInferTrace(c, trace, errorResponse(c, h), name, { ...outcome, failure: { message: h.error.message, code: h.error.code } });
    }
    return finishInferTrace(c, trace, res, name, outcome);
  }

  function notServed(c: Context, err: unknown, outcome: InferOutcome): Response {
    // Not a run of anything served: a record per invented name would let any caller fill the runs table.
    note(c, { note: 'not served, no run record' });
    const h = httpError(err);
    outcome.failure = { message: h.error.message, code: h.error.code };
    return errorResponse(c, h);
  }

  async function infer(c: Context, trace: RequestTrace, outcome: InferOutcome, header: (name: string) => string | undefined): Promise<Response> {
    const startedAt = new Date();
    const t0 = performance.now();
    const runId = randomUUID();
    const name = c.req.param('name') ?? '';
    let version = c.req.param('version') ?? '';
    const refused = runs.admit?.();
    if (refused) {
      // Refused before it ran, so that the records of the requests that did run can catch up: no record (the access log has it).
      note(c, { note: 'refused, run records backlogged' });
      const h = httpError(refused);
      outcome.failure = { message: h.error.message, code: h.error.code };
      return errorResponse(c, h);
    }
    note(c, { runId, pipeline: name });
    outcome.runId = runId;
    const observer = registry.observer;
    observer?.requestStarted?.({ pipeline: name, version });
    let stages: StageRunRecord[] = [];
    let items: number | undefined;
    /** What the pipeline's monitors found; its own observer modules, once the version serving is known. */
    const findings: Finding[] = [];
    let own: Observer | undefined;
    const record = (status: number, error?: EnsembleError) => {
      const durationMs = performance.now() - t0;
      const computeMs = stages.length ? stages.reduce((sum, s) => sum + s.computeMs, 0) : undefined;
      const rec: RunRecord = {
        id: runId, pipeline: name, version, status: status < 400 ? 'succeeded' : 'failed', httpStatus: status,
        startedAt: startedAt.toISOString(), durationMs: Math.round(durationMs * 100) / 100,
        stages, transport, traceId: trace.traceId,
      };
      if (error !== undefined) rec.error = error.message;
      rec.profile = runProfile(stages, assumptions, gatewayFunction && { ...gatewayFunction, durationMs });
      if (findings.length) {
        rec.findings = findings;
        for (const f of findings) {
          const e = { ...f, pipeline: name, version, runId };
          observer?.finding?.(e);
          own?.finding?.(e);
        }
      }
      const ended = { pipeline: name, version, httpStatus: status, error: error?.code, durationMs, items, computeMs, record: rec };
      observer?.requestEnded?.(ended);
      own?.requestEnded?.(ended);
      return runs.put(rec);
    };
    try {
      return await registry.use(name, version || undefined, (p) => run(p));
    } catch (err) {
      const h = httpError(err);
      outcome.failure = { message: h.error.message, code: h.error.code };
      await record(h.status, h.error);
      const res = errorResponse(c, h);
      res.headers.set('x-ensemble-run-id', runId);
      return res;
    }

    async function run(p: LoadedPipeline): Promise<Response> {
      version = p.manifest.version;
      outcome.version = version;
      own = p.observer;
      own?.requestStarted?.({ pipeline: name, version });
      const { request, tensors } = await decodeBody(c, p.manifest, header);
      if (request.id !== undefined) outcome.requestId = String(request.id);
      validateInputs(p.manifest, tensors);
      items = requestItems(p.manifest, tensors);
      p.monitors?.checkInputs(tensors, findings);
      const wanted = requestedOutputs(p.manifest, request);
      const classify = classificationsAsked(p.manifest, request);
      let result;
      try {
        const asked = timeoutParam(request);
        const left = remainingMs?.(c);
        const timeoutMs = left === undefined ? asked : Math.max(1, Math.min(asked ?? Infinity, left));
        const gone = clientGone(c);
        result = await p.executor.run(tensors, {
          ...(gone ? { cancelWith: gone } : { signal: c.req.raw.signal }),
          timeoutMs, startedAt: t0, outputs: request.outputs?.length ? wanted : undefined, trace,
        });
      } catch (e) {
        if (e instanceof RunFailure) { stages = e.stages; throw e.error; }
        throw e;
      }
      stages = result.stages;
      p.monitors?.checkOutputs(result.outputs, findings);
      const outputs = wanted.map((o) => {
        const k = classify.get(o);
        const raw = result.outputs[o] as Tensor;
        const tensor = k === undefined ? raw : classifyOutput(o, raw, k, p.manifest.outputs.find((s) => s.name === o)?.labels);
        return { name: o, tensor, binary: wantsBinaryOutput(request, o) || !jsonEncodable(tensor) };
      });
      const encoded = encodeInferResponse(
        { model_name: p.manifest.name, model_version: p.manifest.version, id: request.id, parameters: { run_id: runId } },
        outputs,
      );
      await record(200);
      const headers: Record<string, string> = { 'x-ensemble-run-id': runId };
      if (encoded.headerLength !== undefined) {
        headers['content-type'] = 'application/octet-stream';
        headers[INFERENCE_HEADER_CONTENT_LENGTH] = String(encoded.headerLength);
      } else {
        headers['content-type'] = 'application/json';
      }
      traceHeaders(trace, headers);
      const res = await encodedResponse(encoded.body as Uint8Array<ArrayBuffer>, 200, headers, header('accept-encoding'));
      outcome.named = true;
      return res;
    }
  }

  return app;
}

/**
 * Served by @hono/node-server: the client's going away, told by Node's
 * response itself (closed before it was finished), as node-server tells its
 * request's signal. Reading that signal makes node-server build an
 * AbortController for the request, which is a cost to every request for the
 * rare one whose client leaves. Elsewhere (Lambda, app.request()) the
 * request's signal is used.
 */
function clientGone(c: Context): ((cancel: () => void) => void) | undefined {
  const env = c.env as { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;
  const incoming = env?.incoming;
  const outgoing = env?.outgoing;
  if (!incoming || !outgoing || typeof outgoing.once !== 'function') return undefined;
  return (cancel) => {
    // A request pipelined behind others on its connection (HTTP/1.1 lets a client send the next one
    // before the last is answered) gets its response's socket only when the ones before it are done:
    // until then the request's own socket says whether the client is there.
    const socket = outgoing.socket ?? incoming.socket;
    if (incoming.errored || !socket || socket.destroyed) { cancel(); return; }
    if (outgoing.socket) {
      outgoing.once('close', () => { if (incoming.errored || !outgoing.writableFinished) cancel(); });
      return;
    }
    const forget = whenClosed(socket, () => { if (!outgoing.writableFinished) cancel(); });
    outgoing.once('finish', forget);
  };
}

/** Per connection, what its pipelined requests do if it closes: one listener per socket, however many wait. */
const onSocketClose = new WeakMap<Socket, Set<() => void>>();

function whenClosed(socket: Socket, fn: () => void): () => void {
  let waiting = onSocketClose.get(socket);
  if (!waiting) {
    const set = new Set<() => void>();
    waiting = set;
    onSocketClose.set(socket, set);
    socket.once('close', () => { for (const f of [...set]) f(); set.clear(); });
  }
  waiting.add(fn);
  return () => { waiting.delete(fn); };
}

/**
 * The request's headers by (lower-case) name. Served by @hono/node-server,
 * from Node's own parsed headers: `c.req.header()` makes node-server build a
 * web Headers object from them for every request, which showed in the
 * gateway's profile. Repeated headers are joined with ", " as Headers joins
 * them (Node keeps only the first of those that may appear once).
 */
function headerReader(c: Context): (name: string) => string | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const h = incoming?.headers;
  if (!h || typeof h !== 'object') return (name) => c.req.header(name);
  return (name) => {
    // Node's names are lower case; Headers' lookup ignores case.
    const v = h[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : v;
  };
}

/** OIP JSON, JSON + binary blobs, or (for a pipeline with one BYTES input) the raw bytes of that input. */
async function decodeBody(
  c: Context, m: Manifest, header: (name: string) => string | undefined,
): Promise<{ request: InferRequestJson; tensors: Record<string, Tensor> }> {
  // c.env.incoming: served by @hono/node-server (not Lambda, not app.request() in tests).
  const body = await readBody(c.req.raw, m.maxRequestBytes, { fromNodeServer: (c.env as { incoming?: unknown } | undefined)?.incoming !== undefined, header });
  const headerLength = parseHeaderLength(header(INFERENCE_HEADER_CONTENT_LENGTH));
  const type = (header('content-type') ?? '').toLowerCase();
  // Only an image or an octet stream without the binary-data header may be a raw body; anything else
  // (curl's default form type included) is read as Open Inference Protocol JSON.
  const raw = type.startsWith('image/') || type.startsWith('application/octet-stream');
  // Triton's raw binary request: no inference header at all, the body one item of the single input, every output binary.
  if (headerLength === 0) return { request: { inputs: [], parameters: { binary_data_output: true } }, tensors: rawBinaryTensors(m, body) };
  if (headerLength !== undefined || !raw) return decodeInferRequest(body, headerLength, { maxItems: m.maxItems });
  // tritonclient.http.aio labels every JSON request an octet stream: a body that is an OIP request object
  // is one, whatever its label (no image starts with '{').
  const parsed = parseInferRequestJson(body);
  if (parsed) return decodeInferRequest(body, undefined, { maxItems: m.maxItems, parsed });
  return { request: { inputs: [] }, tensors: rawInputTensors(m, body, `content-type '${type}'`) };
}

/** Rows of the request: the item count of its first input that is cut into items. */
function requestItems(m: Manifest, tensors: Record<string, Tensor>): number | undefined {
  const spec = m.inputs.find((i) => !i.perRequest);
  return spec && tensors[spec.name]?.shape[spec.batchAxis ?? 0];
}

function requestedOutputs(m: Manifest, request: InferRequestJson): string[] {
  const all = m.outputs.map((o) => o.name);
  if (!request.outputs?.length) return all;
  return request.outputs.map((o) => {
    if (!all.includes(o.name)) {
      throw new BadRequestError(`unknown output '${clip(o.name)}'; model '${m.name}' has ${all.map((n) => `'${n}'`).join(', ')}`);
    }
    return o.name;
  });
}

/**
 * The request's deadline in milliseconds, if it sets one: `parameters.timeout`
 * in microseconds as Triton's clients send it (0: none), or `timeout_ms` in
 * milliseconds, the form this API took first.
 */
function timeoutParam(request: InferRequestJson): number | undefined {
  const micros = request.parameters?.timeout;
  const millis = request.parameters?.timeout_ms;
  if (micros !== undefined && millis !== undefined) {
    throw new BadRequestError('parameters.timeout (microseconds) and parameters.timeout_ms (milliseconds) are both set; send one');
  }
  if (micros !== undefined) {
    // An unsigned integer, as Triton's server reads it.
    if (typeof micros !== 'number' || !Number.isSafeInteger(micros) || micros < 0) {
      throw new BadRequestError(`parameters.timeout must be a whole, non-negative number of microseconds, got ${JSON.stringify(micros)}`);
    }
    if (micros === 0) return undefined;
    if (micros / 1000 > MAX_TIMER_MS) {
      throw new BadRequestError(`parameters.timeout ${micros} is over the maximum of ${MAX_TIMER_MS * 1000} microseconds`);
    }
    return micros / 1000;
  }
  if (millis === undefined) return undefined;
  if (typeof millis !== 'number' || !(millis > 0) || !Number.isFinite(millis)) {
    throw new BadRequestError(`parameters.timeout_ms must be a positive number of milliseconds, got ${JSON.stringify(millis)}`);
  }
  if (millis > MAX_TIMER_MS) throw new BadRequestError(`parameters.timeout_ms ${millis} is over the maximum of ${MAX_TIMER_MS} milliseconds`);
  return millis;
}
