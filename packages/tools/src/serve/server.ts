import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import type { StageTransport } from '@ensemble/core/transport/types.js';
import { verifyManifest } from '@ensemble/core/manifest/verify.js';
import { PipelineRegistry } from '@ensemble/core/pipelines/registry.js';
import { scanPipelines } from '@ensemble/core/pipelines/load-all.js';
import { pipelineRepository } from './repository.js';
import { watchPipelines } from './watch.js';
import { reservePort } from './port.js';
import { tuneHeapGrowth } from './heap-growth.js';
import { buildIfNeeded } from '../pipelines/build.js';
import { pushPipeline } from '../pipelines/push.js';
import { WorkerPoolTransport } from '@ensemble/core/transport/worker-pool.js';
import { createApp } from '@ensemble/core/http/app.js';
import { startTracing, stopTracing } from '@ensemble/core/observability/tracing.js';
import { apiKeyAccess, parseApiKeys } from '@ensemble/core/http/api-key.js';
import { openEnvironment, type Environment } from './environment.js';
import { EnsembleError } from '@ensemble/core/errors.js';
import { PrometheusMetrics } from '@ensemble/core/observability/metrics.js';
import { queueDepths } from '@ensemble/core/pipelines/queue-depths.js';
import { closeObservers, loadObservers } from '@ensemble/core/pipelines/observers.js';
import { existsSync } from 'node:fs';
import { Jobs } from '@ensemble/core/jobs/service.js';
import { DEFAULT_QUEUE_POLICY, type QueuePolicy } from '@ensemble/core/jobs/queue.js';
import { httpStatus } from '@ensemble/core/http/errors.js';
import { observers, type LoadedObserver, type Observer } from '@ensemble/core/observability/events.js';
import { ModelStatistics } from '@ensemble/core/observability/statistics.js';
import { consoleMounts } from '@ensemble/console';

export interface ServerOptions {
  port?: number;
  host?: string;
  dataDir?: string;
  modelsDir?: string;
  /** Serve only these pipelines (default: every models/<name>/pipeline.yaml). */
  pipelines?: string[];
  env?: Record<string, string | undefined>;
  /** Bounds of the run record journal (default: a server's). */
  journal?: { highWater?: number; lowWater?: number };
  /** Build the transport once the environment is known (default: worker processes, identical stages sharing a pool). */
  transport?: (env: Environment) => StageTransport | Promise<StageTransport>;
  log?: (s: string) => void;
  /** The access log, one line per request (default: none; `ensemble serve` writes it to stdout). */
  requestLog?: (line: string) => void;
  /**
   * The API key every request but the health probes must carry, as on
   * Lambda; besides ENSEMBLE_API_KEY and the pipeline-scoped ENSEMBLE_API_KEYS
   * from `env`. With none, the server is open (and says so if it listens
   * beyond loopback).
   */
  apiKey?: string;
  /** Reload a pipeline when its manifest, stage code or weights change, and load new pipeline folders. */
  watch?: boolean;
  /** Told of every request, batch and worker restart besides the server's own metrics and statistics. */
  observer?: Observer;
  /** Observer modules told of every pipeline's events (paths relative to the working directory). */
  observers?: string[];
  /** Job queue settings (default: DEFAULT_QUEUE_POLICY); tests shorten the backoff. */
  jobQueuePolicy?: Partial<QueuePolicy>;
}

export interface RunningServer {
  url: string;
  port: number;
  app: Hono;
  env: Environment;
  registry: PipelineRegistry;
  /** What `GET /metrics` serves. */
  metrics: PrometheusMetrics;
  manifests: Manifest[];
  jobs: Jobs;
  /**
   * Stop taking connections, let the requests in flight finish, flush run
   * records and stop the stages. A request still unanswered after `drainMs`
   * (default DEFAULT_DRAIN_MS; a client stalled mid-body, a stage that hangs)
   * has its connection closed: it ends as the client gone, with its record.
   */
  close(opts?: { drainMs?: number }): Promise<void>;
}

/** How long close() waits for requests in flight before it closes their connections (Kubernetes' default grace is 30 s). */
export const DEFAULT_DRAIN_MS = 25_000;

/**
 * `ensemble serve`: data services (local emulators or AWS), pipelines built,
 * pushed and verified, the gateway listening. Loading happens before listen,
 * so `/v2/health/ready` is true as soon as anyone can reach it.
 */
export async function startServer(opts: ServerOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? ((s: string) => console.error(`[ensemble] ${s}`));
  // Manifests first: a missing models folder or a duplicated name is reported before any emulator or worker starts.
  const modelsDir = resolve(opts.modelsDir ?? 'models');
  const { manifests, broken } = await scanPipelines(modelsDir);
  const chosen = (name: string) => !opts.pipelines?.length || opts.pipelines.includes(name);
  const selected = manifests.filter((m) => chosen(m.name));
  const unreadable = broken.filter((b) => chosen(b.name));
  for (const name of opts.pipelines ?? []) {
    if (!manifests.some((m) => m.name === name) && !broken.some((b) => b.name === name)) throw new EnsembleError(`no pipeline '${name}' under ${modelsDir}`, 'usage');
  }
  const vars = opts.env ?? process.env;
  // Before anything starts: a malformed key list is refused, not half-applied.
  const keys = parseApiKeys(opts.apiKey ?? vars.ENSEMBLE_API_KEY, vars.ENSEMBLE_API_KEYS);
  // A process setting, for the gateway this process becomes (serve/heap-growth.ts).
  tuneHeapGrowth(vars);
  const host = opts.host ?? '127.0.0.1';
  const warning = openBindingWarning(host, keys.length);
  if (warning) log(warning);
  // Held while loading, so a port in use is said at once rather than after every pipeline has loaded.
  const reserved = await reservePort(opts.port ?? 8080, host);
  const env = await openEnvironment({ dataDir: opts.dataDir ?? '.ensemble', env: opts.env, journal: opts.journal }).catch(async (e: unknown) => {
    await reserved.release();
    throw e;
  });
  const cleanup: (() => Promise<void>)[] = [() => env.close(), () => reserved.release(), () => stopTracing()];
  try {
    // Before the workers start: they inherit the environment and export to the same endpoint.
    if (await startTracing('ensemble', vars)) log(`tracing: exporting spans over OTLP/HTTP to ${vars.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || vars.OTEL_EXPORTER_OTLP_ENDPOINT}`);
    const modules = await serverObservers(opts.observers ?? []);
    cleanup.unshift(() => closeObservers(modules));
    // One transport for every pipeline and version: identical stages share its workers, and a reload
    // unloads the old version from it (its pools no one else uses close) once the new one serves.
    const statistics = new ModelStatistics();
    // Read when scraped: the registry exists by then.
    let registry: PipelineRegistry | undefined;
    const metrics = new PrometheusMetrics({
      queueDepths: () => (registry ? queueDepths(registry) : []),
      runRecordBacklog: () => env.runs.unwritten,
    });
    const observer = observers([statistics, metrics, opts.observer, ...modules]);
    registry = new PipelineRegistry(opts.transport ? await opts.transport(env) : new WorkerPoolTransport(env.weights, { observer }), { observer });
    cleanup.unshift(() => registry.close());
    for (const b of unreadable) {
      registry.loadFailed(b.name, b.error);
      log(`${b.name}: not served: ${message(b.error)}`);
    }
    const prepare = async (m: Manifest) => {
      await buildIfNeeded(m, log);
      if (env.mode === 'local') await pushPipeline(m, { s3: env.s3, bucket: env.settings.bucket, log });
      await verifyManifest(m, env.weights);
    };
    const failed: string[] = unreadable.map((b) => b.name);
    for (const m of selected) {
      try {
        await prepare(m);
        await registry.add(m);
        log(`loaded ${m.name} v${m.version} (${m.stages.length} stages)`);
      } catch (e) {
        // A broken pipeline (missing weights, bad stage code) takes down itself, not the others: it answers 503 with the reason.
        registry.loadFailed(m.name, e, m);
        failed.push(m.name);
        log(`${m.name}: not served: ${message(e)}`);
      }
    }
    const total = selected.length + unreadable.length;
    if (total && failed.length === total) throw new EnsembleError(`no pipeline could be loaded (${failed.join(', ')}); see above`, 'not_ready');

    // A version loaded again counts from zero in /stats, as Triton's; /metrics' counters only ever grow.
    const repository = pipelineRepository({ modelsDir, registry, prepare, loaded: (m) => statistics.loaded(m), log });
    const access = apiKeyAccess(keys, { required: false });
    const transportKind = registry.transport.kind;
    const jobs = await startJobs({ env, registry, manifests: selected, transport: transportKind, policy: opts.jobQueuePolicy, log });
    cleanup.unshift(() => jobs.close());
    const app = createApp({ registry, runs: env.runs, transport: transportKind, log: opts.requestLog, guard: access.guard, visible: access.visible, repository, jobs, statistics, metrics,
      mounts: consoleMounts({ registry, visible: access.visible }),
    });
    await reserved.release();
    const server = await listen(app, reserved.port, host);
    const answering = trackResponses(server);
    const port = (server.address() as { port: number }).port;
    const url = `http://${host}:${port}`;
    // Where the CLI finds this server; an address bound on every interface is reached on loopback.
    await env.lock?.update({ url: `http://${clientHost(host)}:${port}` });
    const watcher = opts.watch ? watchPipelines({ modelsDir, repository, chosen, log }) : undefined;
    // The pipelines that failed to load were each named with why as they failed; here only which ones.
    const down = registry.names().filter((n) => registry.failedToLoad(n));
    const serving = registry.names().filter((n) => !down.includes(n));
    log(`serving ${serving.join(', ') || 'no pipeline'}${down.length ? ` (not serving ${down.join(', ')}: failed to load)` : ''} on ${url} (data: ${env.mode === 'local' ? resolve(opts.dataDir ?? '.ensemble') : 'AWS'})${watcher ? `, watching ${modelsDir}` : ''}; console at ${url}/console`);
    let closing: Promise<void> | undefined;
    return {
      url, port, app, env, registry, metrics, manifests: selected, jobs,
      close({ drainMs = DEFAULT_DRAIN_MS } = {}) {
        closing ??= (async () => {
          watcher?.close();
          // Requests still running finish, but on a connection that then closes: a client's
          // keep-alive socket would otherwise hold server.close() open until it times out.
          for (const res of answering) if (!res.headersSent) res.shouldKeepAlive = false;
          const closed = new Promise<void>((r) => server.close(() => r()));
          const http = server as Server;
          // Idle keep-alive sockets go now; what is still unanswered at the deadline, then.
          http.closeIdleConnections();
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<'late'>((r) => { timer = setTimeout(() => r('late'), drainMs); });
          const drained = await Promise.race([closed, late]);
          clearTimeout(timer);
          if (drained === 'late') {
            log(`still ${answering.size} request(s) unanswered after ${drainMs} ms of draining: closing their connections`);
            http.closeAllConnections();
          }
          await closed;
          for (const c of cleanup) await c();
        })();
        return closing;
      },
    };
  } catch (e) {
    for (const c of cleanup) await c().catch(() => undefined);
    throw e;
  }
}

/** A transport that runs the job consumer itself (LocalLambdaTransport): it is handed the queues. */
interface JobConsumingTransport {
  consumeJobs(queues: Jobs['queues'], pipelines: string[]): void;
}

/** `--observer` modules: loaded as a manifest's are, for every pipeline (ctx.pipeline is ''). */
async function serverObservers(files: string[]): Promise<LoadedObserver[]> {
  const specs = files.map((f) => {
    const module = resolve(f);
    if (!existsSync(module)) throw new EnsembleError(`--observer ${f}: file not found: ${module}`, 'usage');
    return { module, options: {} };
  });
  return loadObservers(specs, { pipeline: '', version: '', dir: process.cwd() });
}

/**
 * Batch jobs: in local mode the emulator's queues are made for each pipeline
 * and the items of jobs a stopped server left unfinished are queued again
 * (the emulator forgets its messages); then this process consumes the queues.
 */
async function startJobs(o: { env: Environment; registry: PipelineRegistry; manifests: Manifest[]; transport: string; policy?: Partial<QueuePolicy>; log: (s: string) => void }): Promise<Jobs> {
  const jobs = new Jobs({
    settings: o.env.settings, s3: o.env.s3, dynamo: o.env.dynamo, sqs: o.env.sqs, registry: o.registry, runs: o.env.runs,
    statusOf: httpStatus, transport: o.transport, policy: { ...DEFAULT_QUEUE_POLICY, ...o.policy }, log: o.log,
  });
  if (o.env.mode === 'local') {
    for (const m of o.manifests) {
      jobs.queues.setMaxReceives(m.name, m.jobs?.maxReceives);
      await jobs.queues.ensure(m.name);
    }
    const requeued = await jobs.resume();
    if (requeued) o.log(`jobs: queued ${requeued} items of unfinished jobs again`);
    // On AWS the consumer function's event source mapping consumes the queues; a transport that hosts
    // the consumer function (the local Lambda host) feeds it the same way, and the poller is not needed.
    const t = o.registry.transport as Partial<JobConsumingTransport>;
    if (typeof t.consumeJobs === 'function') t.consumeJobs(jobs.queues, o.manifests.map((m) => m.name));
    else jobs.consume(o.manifests);
  }
  return jobs;
}

/** What to say when the server listens beyond loopback with no API key, if it does. */
export function openBindingWarning(host: string, keyCount: number): string | undefined {
  if (keyCount > 0 || isLoopback(host)) return undefined;
  return `warning: listening on ${host} with no API key: anyone who can reach this address can run inference and read run records (set --api-key or ENSEMBLE_API_KEY)`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

function clientHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** The responses being written right now. */
function trackResponses(server: ServerType): Set<ServerResponse> {
  const open = new Set<ServerResponse>();
  (server as Server).on('request', (_req: IncomingMessage, res: ServerResponse) => {
    open.add(res);
    res.once('close', () => open.delete(res));
  });
  return open;
}

function listen(app: Hono, port: number, hostname: string): Promise<ServerType> {
  return new Promise((res, rej) => {
    const server = serve({ fetch: app.fetch, port, hostname }, () => res(server));
    server.once('error', rej);
  });
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
