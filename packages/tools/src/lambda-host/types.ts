/** One function the host serves, as Lambda would know it. */
export interface HostedFunction {
  name: string;
  /** `<file without extension>.<export>`, relative to `root` (Lambda's handler setting). */
  handler: string;
  /** The function's code folder: LAMBDA_TASK_ROOT, and where `handler` is looked up. */
  root: string;
  memoryMb: number;
  timeoutSeconds: number;
  /** The function's own environment variables. */
  environment: Record<string, string>;
  /** Reserved concurrency: more simultaneous invocations are refused with 429. */
  reservedConcurrency?: number;
  /**
   * Environments this host runs at once for the function, at most (default
   * the host's `maxEnvironments`). Past it an invocation waits for one to
   * come free instead of starting another process; reserved concurrency
   * still counts the waiting ones, so throttling is as on Lambda.
   */
  maxEnvironments?: number;
  /** Published versions a Qualifier may name besides $LATEST (they all run the same code here). */
  versions?: string[];
}

export interface LambdaHostOptions {
  /** Default 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
  functions?: HostedFunction[];
  /**
   * Environments per function, at most, unless the function says otherwise
   * (default: no cap, as on Lambda, which starts one per concurrent
   * invocation). A machine with fewer cores than invocations in flight runs
   * them faster on a few warm environments than on many cold ones.
   */
  maxEnvironments?: number;
  /** Concurrent executions across all functions (Lambda's default account quota is 1000). */
  accountConcurrency?: number;
  /** Environment variables every function gets (credentials, endpoints), under its own. */
  environment?: Record<string, string>;
  /** Where each execution environment gets its own /tmp (default: the OS temp folder). */
  tmpDir?: string;
  region?: string;
  accountId?: string;
  /** Seconds sent as Retry-After with a throttle (Lambda usually sends none). */
  retryAfterSeconds?: number;
  /** Function log lines (stdout and stderr of every environment), prefixed with function and environment. */
  log?: (line: string) => void;
}

/** What Lambda reports for a handler that threw, crashed or timed out. */
export interface FunctionErrorDoc {
  errorType: string;
  errorMessage: string;
  trace?: string[];
}

export type InvocationOutcome = 'ok' | 'function-error' | 'timeout' | 'throttled' | 'too-large' | 'not-found' | 'bad-request';

/** One Invoke as the host saw it: the numbers of Lambda's REPORT log line. */
export interface InvocationReport {
  function: string;
  requestId: string;
  outcome: InvocationOutcome;
  /** Which execution environment ran it (none for refused calls). */
  environment?: number;
  /** This call started the environment. */
  coldStart: boolean;
  /** Init Duration: process start, handler module import and its top-level await. */
  initMs?: number;
  /** Duration: the handler's run for this event. */
  durationMs: number;
  /** Lambda bills the invoke (and, since August 2025, the init of on-demand functions) rounded up to 1 ms. */
  billedMs: number;
  memoryMb: number;
  /** Peak resident memory of the environment so far. */
  maxMemoryMb?: number;
  requestBytes: number;
  responseBytes: number;
}

export interface EnvironmentInfo {
  id: number;
  pid?: number;
  state: 'init' | 'idle' | 'busy' | 'dead';
  invocations: number;
  initMs?: number;
}
