import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { EnsembleError } from '@ensemble/core/errors.js';
import { ExecutionEnvironment } from './environment.js';
import {
  INVOKE_REQUEST_LIMIT, INVOKE_RESPONSE_LIMIT, functionNotFound, invalidJson, invalidParameter, requestTooLarge,
  responseTooLarge, throttled, unknownOperation, type ServiceError,
} from './lambda-errors.js';
import type {
  EnvironmentInfo, FunctionErrorDoc, HostedFunction, InvocationOutcome, InvocationReport, LambdaHostOptions,
} from './types.js';

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;
/** Lambda's default account quota for concurrent executions. */
export const DEFAULT_ACCOUNT_CONCURRENCY = 1000;
/** Reports kept for inspection (oldest dropped first). */
const MAX_REPORTS = 10_000;

interface FunctionState {
  fn: HostedFunction;
  /** Live environments, most recently used last. */
  envs: ExecutionEnvironment[];
  /** Ended environments (timed out, crashed, failed init), newest last, for inspection. */
  retired: ExecutionEnvironment[];
  /** Invocations running now or waiting for an environment (each running one holds one environment). */
  busy: number;
  /** Invocations waiting for an environment, oldest first (only with a cap on environments). */
  waiting: ((env: ExecutionEnvironment) => void)[];
  nextEnv: number;
}

/**
 * Lambda's Invoke API on this machine, for the real `@aws-sdk/client-lambda`
 * (endpoint override, any credentials): `POST /2015-03-31/functions/{name}/invocations`.
 * Each function runs in execution environments of its own, one Node process
 * each, handling one event at a time and reused while warm, as Lambda does:
 * the handler module is imported once (init), then called per event. Lambda's
 * rules apply: 6 MB request (413) and response (function error) limits,
 * reserved and account concurrency (429 TooManyRequestsException), the
 * function timeout (the environment is killed, "Task timed out"), errors
 * thrown by the handler as `X-Amz-Function-Error: Unhandled`. With
 * `X-Amz-Log-Type: Tail` the answer carries the log tail with Lambda's REPORT
 * line (Duration, Billed Duration, Init Duration).
 */
export class LambdaHost {
  readonly url: string;
  private readonly functions = new Map<string, FunctionState>();
  private readonly reportLog: InvocationReport[] = [];
  private readonly region: string;
  private readonly accountId: string;
  private readonly accountConcurrency: number;
  private readonly environment: Record<string, string>;
  private readonly tmpRoot: string;
  private readonly log: (line: string) => void;
  private closing?: Promise<void>;
  /** Environments handed to a waiting invocation that has not started on them yet. */
  private readonly handed = new WeakSet<ExecutionEnvironment>();

  private constructor(private readonly server: Server, private readonly opts: LambdaHostOptions) {
    const { port } = server.address() as AddressInfo;
    this.url = `http://${opts.host ?? '127.0.0.1'}:${port}`;
    this.region = opts.region ?? 'us-east-1';
    this.accountId = opts.accountId ?? '000000000000';
    this.accountConcurrency = opts.accountConcurrency ?? DEFAULT_ACCOUNT_CONCURRENCY;
    this.environment = opts.environment ?? {};
    this.tmpRoot = opts.tmpDir ?? tmpdir();
    mkdirSync(this.tmpRoot, { recursive: true });
    this.log = opts.log ?? ((line) => console.error(line));
    for (const fn of opts.functions ?? []) this.register(fn);
  }

  static async start(opts: LambdaHostOptions = {}): Promise<LambdaHost> {
    let host: LambdaHost | undefined;
    const server = createServer((req, res) => {
      host!.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) send(res, 500, { 'x-amzn-errortype': 'ServiceException' }, JSON.stringify({ Type: 'Service', message: String(e) }));
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
    });
    host = new LambdaHost(server, opts);
    return host;
  }

  /** Add a function (or replace one that has no environments running yet). */
  register(fn: HostedFunction): void {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(fn.name)) throw new EnsembleError(`function name '${fn.name}' is not a valid Lambda function name`);
    if (fn.reservedConcurrency !== undefined && !(Number.isInteger(fn.reservedConcurrency) && fn.reservedConcurrency >= 0)) {
      throw new EnsembleError(`function '${fn.name}': reserved concurrency ${fn.reservedConcurrency} is not a whole number`);
    }
    const existing = this.functions.get(fn.name);
    if (existing && existing.envs.some((e) => e.alive)) {
      if (JSON.stringify(existing.fn) === JSON.stringify(fn)) return;
      throw new EnsembleError(`function '${fn.name}' is already registered with other settings and has environments running`);
    }
    if (fn.maxEnvironments !== undefined && !(Number.isInteger(fn.maxEnvironments) && fn.maxEnvironments >= 1)) {
      throw new EnsembleError(`function '${fn.name}': maxEnvironments ${fn.maxEnvironments} is not a whole number of at least 1`);
    }
    this.functions.set(fn.name, { fn, envs: [], retired: [], busy: 0, waiting: [], nextEnv: 1 });
  }

  has(name: string): boolean { return this.functions.has(name); }
  functionNames(): string[] { return [...this.functions.keys()].sort(); }

  /** The function's environments, live and dead (a dead one timed out, crashed or failed init). */
  environments(name: string): EnvironmentInfo[] {
    const state = this.functions.get(name);
    return state ? [...state.retired, ...state.envs].sort((a, b) => a.id - b.id).map((e) => e.info()) : [];
  }

  /** What happened to every Invoke so far, oldest first; optionally one function's. */
  reports(name?: string): InvocationReport[] {
    return name === undefined ? [...this.reportLog] : this.reportLog.filter((r) => r.function === name);
  }

  arn(name: string, qualifier?: string): string {
    return `arn:aws:lambda:${this.region}:${this.accountId}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
  }

  /** Stops listening and ends every environment. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await new Promise<void>((r) => {
        this.server.close(() => r());
        this.server.closeAllConnections();
      });
      await Promise.all([...this.functions.values()].flatMap((f) => f.envs.map((e) => e.stop())));
    })();
    return this.closing;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://lambda');
    const match = INVOKE_PATH.exec(url.pathname);
    const body = await readBody(req, INVOKE_REQUEST_LIMIT);
    if (req.method !== 'POST' || !match) return this.refuse(res, requestId, unknownOperation(req.method ?? '?', url.pathname));

    const [name, arnQualifier] = functionFromPath(decodeURIComponent(match[1]));
    const qualifier = url.searchParams.get('Qualifier') ?? arnQualifier;
    const state = this.functions.get(name);
    const version = qualifier ?? '$LATEST';
    if (!state || (version !== '$LATEST' && !state.fn.versions?.includes(version))) {
      this.report(name, requestId, 'not-found', { requestBytes: body.bytes });
      return this.refuse(res, requestId, functionNotFound(this.arn(name, qualifier)));
    }
    const { fn } = state;
    const invocationType = header(req, 'x-amz-invocation-type') ?? 'RequestResponse';
    if (invocationType !== 'RequestResponse' && invocationType !== 'DryRun') {
      return this.refuse(res, requestId, invalidParameter(`InvocationType ${invocationType} is not supported by the local host (RequestResponse, DryRun)`));
    }
    if (body.tooLarge) {
      this.report(name, requestId, 'too-large', { requestBytes: body.bytes, memoryMb: fn.memoryMb });
      return this.refuse(res, requestId, requestTooLarge());
    }
    const payload = body.buffer.byteLength === 0 ? '{}' : body.buffer.toString('utf8');
    try {
      JSON.parse(payload);
    } catch (e) {
      this.report(name, requestId, 'bad-request', { requestBytes: body.bytes, memoryMb: fn.memoryMb });
      return this.refuse(res, requestId, invalidJson((e as Error).message));
    }
    if (invocationType === 'DryRun') return send(res, 204, { 'x-amzn-requestid': requestId }, '');

    // Concurrency counts running invocations, as Lambda's does: past the limit, refuse at once.
    const reserved = fn.reservedConcurrency;
    const running = [...this.functions.values()].reduce((n, f) => n + f.busy, 0);
    if ((reserved !== undefined && state.busy >= reserved) || running >= this.accountConcurrency) {
      this.report(name, requestId, 'throttled', { requestBytes: body.bytes, memoryMb: fn.memoryMb });
      const err = throttled(reserved !== undefined && state.busy >= reserved
        ? 'ReservedFunctionConcurrentInvocationLimitExceeded' : 'ConcurrentInvocationLimitExceeded');
      return this.refuse(res, requestId, err, this.opts.retryAfterSeconds);
    }

    state.busy++;
    let env: ExecutionEnvironment | undefined;
    let outcome;
    try {
      env = await this.environmentFor(state);
      this.handed.delete(env);
      outcome = await env.invoke(payload, requestId);
    } finally {
      state.busy--;
      if (env) this.handOn(state, env);
    }
    const { result, coldStart, initMs } = outcome;
    let errorDoc: FunctionErrorDoc | undefined;
    let responseText = '';
    let kind: InvocationOutcome = 'ok';
    if (result.ok) {
      const bytes = Buffer.byteLength(result.payload);
      if (bytes > INVOKE_RESPONSE_LIMIT) {
        errorDoc = responseTooLarge(bytes);
        kind = 'function-error';
      } else {
        responseText = result.payload;
      }
    } else {
      errorDoc = result.error;
      kind = result.timedOut ? 'timeout' : 'function-error';
    }
    if (errorDoc) responseText = JSON.stringify(errorDoc);

    const report = this.report(name, requestId, kind, {
      environment: env.id, coldStart, initMs, durationMs: result.durationMs, memoryMb: fn.memoryMb,
      maxMemoryMb: result.maxMemoryMb, requestBytes: body.bytes, responseBytes: Buffer.byteLength(responseText),
    });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-amzn-requestid': requestId,
      'x-amz-executed-version': version,
    };
    if (errorDoc) headers['x-amz-function-error'] = 'Unhandled';
    if (header(req, 'x-amz-log-type') === 'Tail') headers['x-amz-log-result'] = logTail(report, version, errorDoc);
    send(res, 200, headers, responseText);
  }

  /**
   * A warm environment if one is idle (most recently used first), else a new
   * one (cold start), else, at the function's cap, the next one to come free.
   */
  private environmentFor(state: FunctionState): ExecutionEnvironment | Promise<ExecutionEnvironment> {
    const idle = this.idleOrNew(state);
    if (idle) return idle;
    return new Promise((resolve) => state.waiting.push(resolve));
  }

  /** An invocation ended on `env`: the oldest waiting one gets it, or a fresh one when it died. */
  private handOn(state: FunctionState, env: ExecutionEnvironment): void {
    if (state.waiting.length === 0 || this.closing) return;
    const next = env.alive && env.state === 'idle' ? env : this.idleOrNew(state);
    if (!next) return;
    // Promised, not yet running: no other invocation may take it in between.
    this.handed.add(next);
    state.waiting.shift()!(next);
  }

  private cap(state: FunctionState): number {
    return state.fn.maxEnvironments ?? this.opts.maxEnvironments ?? Infinity;
  }

  private idleOrNew(state: FunctionState): ExecutionEnvironment | undefined {
    for (const e of state.envs.filter((x) => !x.alive)) state.retired.push(e);
    state.envs = state.envs.filter((e) => e.alive);
    state.retired.splice(0, Math.max(0, state.retired.length - 50));
    for (let i = state.envs.length - 1; i >= 0; i--) {
      const e = state.envs[i];
      if (e.state === 'idle' && !this.handed.has(e)) {
        // Most recently used last: the next call takes the warmest one.
        state.envs.splice(i, 1);
        state.envs.push(e);
        // Taken from here on, though the invocation starts on it a microtask later.
        this.handed.add(e);
        return e;
      }
    }
    if (state.envs.length >= this.cap(state)) return undefined;
    const env = new ExecutionEnvironment({
      fn: state.fn, id: state.nextEnv++, region: this.region, arn: this.arn(state.fn.name),
      environment: this.environment, tmpRoot: this.tmpRoot, log: this.log,
    });
    state.envs.push(env);
    return env;
  }

  private refuse(res: ServerResponse, requestId: string, err: ServiceError, retryAfter?: number): void {
    const headers: Record<string, string> = {
      'content-type': 'application/json', 'x-amzn-requestid': requestId, 'x-amzn-errortype': err.type,
    };
    if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
    send(res, err.status, headers, JSON.stringify(err.body));
  }

  private report(name: string, requestId: string, outcome: InvocationOutcome, r: Partial<InvocationReport>): InvocationReport {
    const durationMs = r.durationMs ?? 0;
    const full: InvocationReport = {
      function: name, requestId, outcome, coldStart: r.coldStart ?? false, durationMs,
      billedMs: outcome === 'throttled' || outcome === 'not-found' || outcome === 'too-large' || outcome === 'bad-request'
        ? 0 : Math.ceil(durationMs + (r.coldStart ? r.initMs ?? 0 : 0)),
      memoryMb: r.memoryMb ?? 0, requestBytes: r.requestBytes ?? 0, responseBytes: r.responseBytes ?? 0,
    };
    if (r.environment !== undefined) full.environment = r.environment;
    if (r.initMs !== undefined) full.initMs = r.initMs;
    if (r.maxMemoryMb !== undefined) full.maxMemoryMb = r.maxMemoryMb;
    this.reportLog.push(full);
    if (this.reportLog.length > MAX_REPORTS) this.reportLog.shift();
    return full;
  }
}

/** `name`, `name:qualifier`, `123456789012:function:name[:q]` or a full ARN. */
function functionFromPath(s: string): [string, string | undefined] {
  const parts = s.split(':');
  if (parts.length === 1) return [s, undefined];
  if (parts.length === 2) return [parts[0], parts[1]];
  const at = parts.indexOf('function');
  if (at < 0 || at + 1 >= parts.length) return [s, undefined];
  return [parts[at + 1], parts[at + 2]];
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The whole body, or only its size once past the limit (read to the end, so the client sees our answer, not a reset). */
async function readBody(req: IncomingMessage, limit: number): Promise<{ buffer: Buffer; bytes: number; tooLarge: boolean }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const c of req) {
    const chunk = c as Buffer;
    bytes += chunk.byteLength;
    if (bytes <= limit) chunks.push(chunk);
  }
  return { buffer: bytes <= limit ? Buffer.concat(chunks) : Buffer.alloc(0), bytes, tooLarge: bytes > limit };
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** Base64 of the end of the invocation's log, as X-Amz-Log-Result carries it (the last 4 KB). */
function logTail(r: InvocationReport, version: string, error?: FunctionErrorDoc): string {
  const lines = [`START RequestId: ${r.requestId} Version: ${version}`];
  if (error) lines.push(`${new Date().toISOString()}\t${r.requestId}\tERROR\t${error.errorType}: ${error.errorMessage}`);
  lines.push(`END RequestId: ${r.requestId}`);
  let report = `REPORT RequestId: ${r.requestId}\tDuration: ${r.durationMs.toFixed(2)} ms\tBilled Duration: ${r.billedMs} ms\tMemory Size: ${r.memoryMb} MB`;
  if (r.maxMemoryMb !== undefined) report += `\tMax Memory Used: ${r.maxMemoryMb} MB`;
  if (r.coldStart && r.initMs !== undefined) report += `\tInit Duration: ${r.initMs.toFixed(2)} ms`;
  if (r.outcome === 'timeout') report += '\tStatus: timeout';
  lines.push(report, '');
  const text = Buffer.from(lines.join('\n'), 'utf8');
  return text.subarray(Math.max(0, text.byteLength - 4096)).toString('base64');
}
