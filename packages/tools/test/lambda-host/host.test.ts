/**
 * The local Lambda host, driven by the real @aws-sdk/client-lambda: Lambda's
 * answers for success, thrown errors, throttles, payload limits, timeouts,
 * crashes and failed inits, and its execution environments (one process
 * each, init once, reused while warm, own /tmp).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvokeCommand, LambdaClient, type InvokeCommandOutput } from '@aws-sdk/client-lambda';
import { LambdaHost } from '../../src/lambda-host/host.js';
import type { HostedFunction } from '../../src/lambda-host/types.js';
import { INVOKE_REQUEST_LIMIT } from '../../src/lambda-host/lambda-errors.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');

function fn(name: string, handler: string, extra: Partial<HostedFunction> = {}): HostedFunction {
  return { name, handler, root: FIXTURES, memoryMb: 256, timeoutSeconds: 5, environment: {}, ...extra };
}

let host: LambdaHost;
let client: LambdaClient;
const logs: string[] = [];

beforeAll(async () => {
  host = await LambdaHost.start({
    functions: [
      fn('Echo', 'handlers.echo', { environment: { MY_SETTING: 'mine' }, versions: ['3'] }),
      fn('Boom', 'handlers.boom'),
      fn('Sleepy', 'handlers.sleepy', { reservedConcurrency: 1 }),
      fn('Slow', 'handlers.sleepy', { timeoutSeconds: 1 }),
      fn('Big', 'handlers.big'),
      fn('Crash', 'handlers.crash'),
      fn('SlowInit', 'slow-init.handler'),
      fn('BrokenInit', 'broken-init.handler'),
      fn('NoHandler', 'handlers.missing'),
      fn('NoFile', 'nowhere.handler'),
    ],
    environment: { SHARED_SETTING: 'shared' },
    log: (line) => logs.push(line),
  });
  client = new LambdaClient({
    region: 'us-east-1', endpoint: host.url, maxAttempts: 1,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
});

afterAll(async () => {
  client?.destroy();
  await host?.close();
});

async function invoke(name: string, event: unknown, extra: { Qualifier?: string; LogType?: 'Tail' } = {}): Promise<InvokeCommandOutput> {
  return client.send(new InvokeCommand({
    FunctionName: name, Payload: typeof event === 'string' ? Buffer.from(event) : Buffer.from(JSON.stringify(event)), ...extra,
  }));
}
const payload = (out: InvokeCommandOutput): any => JSON.parse(Buffer.from(out.Payload ?? new Uint8Array()).toString('utf8'));
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected the call to fail'); }, (e: any) => e);
const tail = (out: InvokeCommandOutput) => Buffer.from(out.LogResult ?? '', 'base64').toString('utf8');

describe('an invocation', () => {
  it('runs the handler once per event in a warm environment that keeps its module state and /tmp', async () => {
    const first = await invoke('Echo', { n: 1 }, { LogType: 'Tail' });
    expect(first.StatusCode).toBe(200);
    expect(first.FunctionError).toBeUndefined();
    expect(first.ExecutedVersion).toBe('$LATEST');
    const a = payload(first);
    expect(a).toMatchObject({ event: { n: 1 }, calls: 1, functionName: 'Echo', tmpFiles: ['call-1'] });
    expect(a.env).toEqual({ name: 'Echo', memory: '256', mine: 'mine', shared: 'shared', root: FIXTURES });
    expect(a.remainingMs).toBeGreaterThan(0);
    expect(a.remainingMs).toBeLessThanOrEqual(5000);
    // Lambda's REPORT line: a first call reports its Init Duration.
    expect(tail(first)).toMatch(/REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB\tMax Memory Used: \d+ MB\tInit Duration: [\d.]+ ms/);

    const second = payload(await invoke('Echo', { n: 2 }, { LogType: 'Tail' }));
    expect(second).toMatchObject({ event: { n: 2 }, calls: 2, pid: a.pid, startedAt: a.startedAt, tmp: a.tmp, tmpFiles: ['call-1', 'call-2'] });
    expect(second.requestId).not.toBe(a.requestId);

    const reports = host.reports('Echo');
    expect(reports.map((r) => [r.outcome, r.coldStart, r.environment])).toEqual([['ok', true, 1], ['ok', false, 1]]);
    expect(reports[0].initMs).toBeGreaterThan(0);
    expect(reports[0].billedMs).toBeGreaterThanOrEqual(Math.ceil(reports[0].initMs!));
    expect(reports[1].initMs).toBeUndefined();
    expect(host.environments('Echo')).toMatchObject([{ id: 1, state: 'idle', invocations: 2, pid: a.pid }]);
  });

  it('counts init (module scope and its top-level await) apart from the invoke', async () => {
    const first = await invoke('SlowInit', {}, { LogType: 'Tail' });
    expect(payload(first).initWaitedMs).toBeGreaterThanOrEqual(390);
    const [report] = host.reports('SlowInit');
    expect(report.coldStart).toBe(true);
    expect(report.initMs).toBeGreaterThanOrEqual(390);
    expect(report.durationMs).toBeLessThan(report.initMs!);
    expect(tail(first)).toMatch(/Init Duration: \d{3,}\.\d\d ms/);
    const again = await invoke('SlowInit', {}, { LogType: 'Tail' });
    expect(tail(again)).not.toContain('Init Duration');
  });

  it('answers a published version by qualifier, and 404 for a version or function that does not exist', async () => {
    const v3 = await invoke('Echo', {}, { Qualifier: '3' });
    expect(v3.ExecutedVersion).toBe('3');
    const byArn = await invoke(host.arn('Echo'), { arn: true });
    expect(payload(byArn).event).toEqual({ arn: true });

    const noVersion = await failure(invoke('Echo', {}, { Qualifier: '4' }));
    expect(noVersion.name).toBe('ResourceNotFoundException');
    expect(noVersion.$metadata.httpStatusCode).toBe(404);
    const noFunction = await failure(invoke('Nope', {}));
    expect(noFunction.name).toBe('ResourceNotFoundException');
    expect(noFunction.message).toContain('Function not found: arn:aws:lambda:us-east-1:000000000000:function:Nope');
  });

  it('refuses a body that is not JSON', async () => {
    const bad = await failure(invoke('Echo', '{"half":'));
    expect(bad.name).toBe('InvalidRequestContentException');
    expect(bad.$metadata.httpStatusCode).toBe(400);
  });
});

describe('errors', () => {
  it('reports a thrown error as Unhandled with the error document, and keeps the environment', async () => {
    const out = await invoke('Boom', {});
    expect(out.StatusCode).toBe(200);
    expect(out.FunctionError).toBe('Unhandled');
    const doc = payload(out);
    expect(doc).toMatchObject({ errorType: 'TypeError', errorMessage: 'kaboom after 1 calls' });
    expect(doc.trace[0]).toBe('TypeError: kaboom after 1 calls');
    // Same sandbox, same module state: a thrown error does not end it.
    expect(payload(await invoke('Boom', {})).errorMessage).toBe('kaboom after 2 calls');
    expect(host.reports('Boom').map((r) => [r.outcome, r.environment])).toEqual([['function-error', 1], ['function-error', 1]]);
  });

  it('kills an environment past the timeout and starts the next call cold', async () => {
    const out = await invoke('Slow', { ms: 10_000 });
    expect(out.FunctionError).toBe('Unhandled');
    const doc = payload(out);
    expect(doc.errorType).toBe('Sandbox.Timedout');
    expect(doc.errorMessage).toMatch(/^RequestId: \S+ Error: Task timed out after 1\.00 seconds$/);
    const [dead] = host.environments('Slow');
    expect(dead.state).toBe('dead');
    expect(() => process.kill(dead.pid!, 0)).toThrow();

    const next = payload(await invoke('Slow', { ms: 10 }));
    expect(next.slept).toBe(10);
    expect(next.pid).not.toBe(dead.pid);
    expect(host.reports('Slow').map((r) => [r.outcome, r.coldStart, r.environment])).toEqual([['timeout', true, 1], ['ok', true, 2]]);
  });

  it('reports a crashed runtime as Runtime.ExitError', async () => {
    const out = await invoke('Crash', {});
    expect(out.FunctionError).toBe('Unhandled');
    expect(payload(out)).toMatchObject({ errorType: 'Runtime.ExitError' });
    expect(payload(out).errorMessage).toContain('Runtime exited with error: exit status 3');
    expect(host.environments('Crash')[0].state).toBe('dead');
  });

  it('reports an init that throws, a missing handler export and a missing file, every call', async () => {
    for (let i = 0; i < 2; i++) {
      const out = await invoke('BrokenInit', {});
      expect(out.FunctionError).toBe('Unhandled');
      expect(payload(out)).toMatchObject({ errorType: 'RangeError', errorMessage: 'the model file is missing' });
    }
    // A failed init is not reused: each call tried a fresh sandbox.
    expect(host.environments('BrokenInit').map((e) => [e.id, e.state])).toEqual([[1, 'dead'], [2, 'dead']]);

    expect(payload(await invoke('NoHandler', {}))).toMatchObject({ errorType: 'Runtime.HandlerNotFound', errorMessage: 'handlers.missing is undefined or not exported' });
    expect(payload(await invoke('NoFile', {}))).toMatchObject({ errorType: 'Runtime.ImportModuleError' });
  });
});

describe("Lambda's limits", () => {
  it('throttles past reserved concurrency with 429 TooManyRequestsException, and runs again once a slot frees', async () => {
    const running = invoke('Sleepy', { ms: 500 });
    // Let the first call take the one slot.
    await new Promise((r) => setTimeout(r, 100));
    const refused = await failure(invoke('Sleepy', { ms: 1 }));
    expect(refused.name).toBe('TooManyRequestsException');
    expect(refused.$metadata.httpStatusCode).toBe(429);
    expect(refused.Reason).toBe('ReservedFunctionConcurrentInvocationLimitExceeded');
    expect(payload(await running).slept).toBe(500);
    expect(payload(await invoke('Sleepy', { ms: 1 })).slept).toBe(1);
    expect(host.reports('Sleepy').map((r) => r.outcome)).toEqual(['throttled', 'ok', 'ok']);
    // Never more environments than the reserved concurrency.
    expect(host.environments('Sleepy')).toHaveLength(1);
  });

  it('refuses a request over 6 MB with 413 before any environment runs', async () => {
    const before = host.environments('Big').length;
    const tooBig = await failure(invoke('Big', { pad: 'x'.repeat(INVOKE_REQUEST_LIMIT) }));
    expect(tooBig.name).toBe('RequestTooLargeException');
    expect(tooBig.$metadata.httpStatusCode).toBe(413);
    expect(host.environments('Big')).toHaveLength(before);
  });

  it('turns a response over 6 MB into a function error, and keeps the environment', async () => {
    const out = await invoke('Big', { bytes: 7 * 1024 * 1024 });
    expect(out.FunctionError).toBe('Unhandled');
    expect(payload(out)).toMatchObject({ errorType: 'Function.ResponseSizeTooLarge' });
    const ok = await invoke('Big', { bytes: 10 });
    expect(payload(ok)).toBe('xxxxxxxxxx');
    expect(host.reports('Big').filter((r) => r.environment !== undefined).map((r) => r.environment)).toEqual([1, 1]);
  });
});

describe('environments', () => {
  it('serves sequential invokes from one warm environment', async () => {
    host.register(fn('Warm', 'handlers.echo'));
    const pids = new Set<number>();
    for (let i = 0; i < 5; i++) pids.add(payload(await invoke('Warm', { i })).pid);
    expect(pids.size).toBe(1);
    expect(host.environments('Warm')).toMatchObject([{ id: 1, state: 'idle', invocations: 5 }]);
    expect(host.reports('Warm').map((r) => r.coldStart)).toEqual([true, false, false, false, false]);
  });

  it('past its cap of environments queues invocations on the warm ones instead of starting more', async () => {
    host.register(fn('Capped', 'handlers.sleepy', { maxEnvironments: 2 }));
    const outs = await Promise.all(Array.from({ length: 6 }, (_, i) => invoke('Capped', { ms: 20 + i })));
    expect(outs.map((o) => o.FunctionError)).toEqual(Array(6).fill(undefined));
    expect(outs.map((o) => payload(o).slept)).toEqual([20, 21, 22, 23, 24, 25]);
    // Six at once, two environments, no throttles: four calls waited for a warm one.
    expect(host.environments('Capped').map((e) => e.id)).toEqual([1, 2]);
    const reports = host.reports('Capped');
    expect(reports.map((r) => r.outcome)).toEqual(Array(6).fill('ok'));
    expect(reports.filter((r) => r.coldStart)).toHaveLength(2);
    expect(new Set(outs.map((o) => payload(o).pid)).size).toBe(2);
  });

  it('gives a waiting invocation a fresh environment when the one it waited for timed out', async () => {
    host.register(fn('CappedSlow', 'handlers.sleepy', { maxEnvironments: 1, timeoutSeconds: 1 }));
    const running = invoke('CappedSlow', { ms: 60_000 });
    // The second call is sent once the first holds the one environment, so it has to wait.
    while (host.environments('CappedSlow')[0]?.state !== 'busy') await new Promise((r) => setTimeout(r, 10));
    const [stuck, next] = await Promise.all([running, invoke('CappedSlow', { ms: 1 })]);
    expect(stuck.FunctionError).toBe('Unhandled');
    expect(payload(next).slept).toBe(1);
    expect(host.environments('CappedSlow').map((e) => [e.id, e.state])).toEqual([[1, 'dead'], [2, 'idle']]);
  });

  it('refuses a cap below one', () => {
    expect(() => host.register(fn('NoRoom', 'handlers.echo', { maxEnvironments: 0 }))).toThrow(/maxEnvironments 0/);
  });
});

describe('closing', () => {
  it('ends every environment and removes its /tmp', async () => {
    const h = await LambdaHost.start({ functions: [fn('Echo', 'handlers.echo')], log: () => undefined });
    const c = new LambdaClient({ region: 'us-east-1', endpoint: h.url, maxAttempts: 1, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    try {
      const out = JSON.parse(Buffer.from((await c.send(new InvokeCommand({ FunctionName: 'Echo', Payload: Buffer.from('{}') }))).Payload!).toString());
      expect(existsSync(out.tmp)).toBe(true);
      await h.close();
      expect(() => process.kill(out.pid, 0)).toThrow();
      expect(existsSync(out.tmp)).toBe(false);
    } finally {
      c.destroy();
      await h.close();
    }
  });
});
