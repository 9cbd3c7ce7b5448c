import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EnvironmentInfo, FunctionErrorDoc, HostedFunction } from './types.js';
import { INIT_LIMIT_MS, runtimeExited, timedOut } from './lambda-errors.js';

const ENTRY = fileURLToPath(new URL('./runtime-entry.mjs', import.meta.url));
/** Lambda's Node.js runtime looks for the handler file with these extensions, in this order (plus .ts for sources here). */
const HANDLER_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts'];
/** Variables of the host process a function still sees (Lambda's runtime sets its own PATH and locale). */
const PASSTHROUGH = ['PATH', 'LANG', 'SYSTEMROOT', 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'];

export interface EnvironmentOptions {
  fn: HostedFunction;
  id: number;
  region: string;
  arn: string;
  /** Host-wide variables (credentials, endpoints), under the function's own. */
  environment: Record<string, string>;
  tmpRoot: string;
  log: (line: string) => void;
}

export type InvokeResult =
  | { ok: true; payload: string; durationMs: number; maxMemoryMb?: number }
  | { ok: false; error: FunctionErrorDoc; durationMs: number; maxMemoryMb?: number; timedOut: boolean };

interface Init {
  ok: boolean;
  initMs: number;
  error?: FunctionErrorDoc;
}

/**
 * One execution environment of a function: a Node process that imported the
 * handler once and runs one event at a time, reused while it stays healthy.
 * It has its own /tmp (TMPDIR), as a Lambda sandbox has. A timeout or a crash
 * ends it: Lambda discards such a sandbox, and the next call starts cold.
 */
export class ExecutionEnvironment {
  readonly id: number;
  readonly tmpDir: string;
  state: EnvironmentInfo['state'] = 'init';
  invocations = 0;
  initMs?: number;
  private readonly child: ChildProcess;
  private readonly init: Promise<Init>;
  private current?: { id: number; requestId: string; done: (r: InvokeResult) => void; t0: number };
  private nextId = 1;
  private exited?: { code: number | null; signal: string | null };

  constructor(private readonly opts: EnvironmentOptions) {
    this.id = opts.id;
    const { fn } = opts;
    this.tmpDir = mkdtempSync(path.join(opts.tmpRoot, `lambda-${fn.name}-${opts.id}-`));
    const [file, exportName] = resolveHandler(fn);
    this.child = fork(ENTRY, [file ?? path.join(fn.root, fn.handler), exportName], {
      cwd: fn.root,
      env: this.variables(),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Payloads (up to 6 MB of JSON text) cross as strings: the structured clone copies them once,
      // where the default JSON channel would escape every quote in them and parse them back.
      serialization: 'advanced',
      execArgv: [],
    });
    this.pipeLogs();
    this.child.on('exit', (code, signal) => this.onExit(code, signal));
    this.child.on('error', () => undefined);
    this.init = new Promise<Init>((resolve) => {
      const onMessage = (m: { type: string; initMs: number; error?: FunctionErrorDoc }) => {
        if (m.type !== 'ready' && m.type !== 'init-error') return;
        this.child.off('message', onMessage);
        this.initMs = m.initMs;
        resolve(m.type === 'ready' ? { ok: true, initMs: m.initMs } : { ok: false, initMs: m.initMs, error: m.error });
      };
      this.child.on('message', onMessage);
      this.child.once('exit', (code, signal) => resolve({
        ok: false, initMs: 0, error: { errorType: 'Runtime.ExitError', errorMessage: `Runtime exited during init: ${signal ? `signal: ${signal}` : `exit status ${code}`}` },
      }));
      if (!file) {
        resolve({ ok: false, initMs: 0, error: { errorType: 'Runtime.ImportModuleError', errorMessage: `Error: Cannot find module '${fn.handler.replace(/\.[^.]+$/, '')}'` } });
      }
    });
    this.child.on('message', (m: { type: string; id?: number; payload?: string; error?: FunctionErrorDoc; durationMs?: number; maxMemoryMb?: number }) => {
      const cur = this.current;
      if (!cur || m.id !== cur.id) return;
      this.current = undefined;
      if (m.type === 'result') cur.done({ ok: true, payload: m.payload ?? 'null', durationMs: m.durationMs ?? 0, maxMemoryMb: m.maxMemoryMb });
      else cur.done({ ok: false, error: m.error!, durationMs: m.durationMs ?? 0, maxMemoryMb: m.maxMemoryMb, timedOut: false });
    });
  }

  get pid(): number | undefined { return this.child.pid; }
  get alive(): boolean { return this.state !== 'dead'; }

  info(): EnvironmentInfo {
    const out: EnvironmentInfo = { id: this.id, state: this.state, invocations: this.invocations };
    if (this.child.pid !== undefined) out.pid = this.child.pid;
    if (this.initMs !== undefined) out.initMs = this.initMs;
    return out;
  }

  /**
   * Waits for init (cold start), then runs one event. Init has Lambda's 10 s
   * plus the function timeout (Lambda retries a slow init inside the first
   * invoke); the event has the function timeout. Either running out kills the
   * environment and answers with Lambda's timeout error.
   */
  async invoke(payload: string, requestId: string): Promise<{ result: InvokeResult; coldStart: boolean; initMs?: number }> {
    const { fn } = this.opts;
    const coldStart = this.invocations === 0;
    this.invocations++;
    this.state = 'busy';
    const timeoutMs = fn.timeoutSeconds * 1000;
    if (coldStart) {
      const init = await withTimeout(this.init, INIT_LIMIT_MS + timeoutMs);
      if (init === 'timeout') {
        await this.stop();
        return { result: { ok: false, error: timedOut(requestId, fn.timeoutSeconds), durationMs: timeoutMs, timedOut: true }, coldStart };
      }
      if (!init.ok) {
        // A sandbox whose init failed is not reused; the next call tries a fresh one.
        await this.stop();
        return { result: { ok: false, error: init.error!, durationMs: 0, timedOut: false }, coldStart, initMs: init.initMs };
      }
    }
    if (this.exited) {
      return { result: { ok: false, error: runtimeExited(requestId, this.exited.code, this.exited.signal), durationMs: 0, timedOut: false }, coldStart };
    }
    const result = await new Promise<InvokeResult>((resolve) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.current = undefined;
        // Answer once the sandbox is really gone, as Lambda resets it before reporting.
        void this.stop().then(() => resolve({ ok: false, error: timedOut(requestId, fn.timeoutSeconds), durationMs: timeoutMs, timedOut: true }));
      }, timeoutMs);
      this.current = { id, requestId, t0: performance.now(), done: (r) => { clearTimeout(timer); resolve(r); } };
      this.child.send({
        type: 'invoke', id, payload, requestId, functionName: fn.name, version: '$LATEST', arn: this.opts.arn,
        memoryMb: fn.memoryMb, logStream: `local/${this.id}`, deadline: Date.now() + timeoutMs,
      }, (err) => {
        if (err && this.current?.id === id) {
          this.current = undefined;
          clearTimeout(timer);
          resolve({ ok: false, error: runtimeExited(requestId, this.exited?.code ?? null, this.exited?.signal ?? null), durationMs: 0, timedOut: false });
        }
      });
    });
    if (this.state === 'busy') this.state = 'idle';
    return { result, coldStart, initMs: coldStart ? this.initMs : undefined };
  }

  kill(): void {
    if (this.state === 'dead') return;
    this.state = 'dead';
    this.child.removeAllListeners('message');
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    this.cleanTmp();
  }

  /** Resolves once the process is gone. */
  stop(): Promise<void> {
    const gone = this.child.exitCode !== null || this.child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => this.child.once('exit', () => r()));
    this.kill();
    return gone;
  }

  private onExit(code: number | null, signal: string | null): void {
    this.exited = { code, signal };
    const cur = this.current;
    this.current = undefined;
    if (cur) {
      cur.done({ ok: false, error: runtimeExited(cur.requestId, code, signal), durationMs: performance.now() - cur.t0, timedOut: false });
    }
    this.state = 'dead';
    this.cleanTmp();
  }

  private cleanTmp(): void {
    if (existsSync(this.tmpDir)) rmSync(this.tmpDir, { recursive: true, force: true });
  }

  private variables(): Record<string, string> {
    const { fn, region } = this.opts;
    const out: Record<string, string> = {};
    for (const k of PASSTHROUGH) if (process.env[k] !== undefined) out[k] = process.env[k]!;
    Object.assign(out, this.opts.environment, fn.environment, {
      // What Lambda sets in every Node.js sandbox; a function cannot override these.
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `local/${this.id}`,
      LAMBDA_TASK_ROOT: fn.root,
      TMPDIR: this.tmpDir,
      HOME: this.tmpDir,
    });
    return out;
  }

  private pipeLogs(): void {
    const prefix = `${this.opts.fn.name}[${this.id}]`;
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let rest = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) this.opts.log(`${prefix} ${line}`);
      });
      stream?.on('end', () => { if (rest) this.opts.log(`${prefix} ${rest}`); });
    }
  }
}

/** `functions/stage.handler` -> [<root>/functions/stage.<ext>, 'handler'], or [undefined, export] when no such file. */
export function resolveHandler(fn: Pick<HostedFunction, 'root' | 'handler'>): [string | undefined, string] {
  const dot = fn.handler.lastIndexOf('.');
  const base = dot > 0 ? fn.handler.slice(0, dot) : fn.handler;
  const exportName = dot > 0 ? fn.handler.slice(dot + 1) : 'handler';
  for (const ext of HANDLER_EXTENSIONS) {
    const file = path.join(fn.root, base + ext);
    if (existsSync(file)) return [file, exportName];
  }
  return [undefined, exportName];
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
