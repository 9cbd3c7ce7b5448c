/**
 * LambdaTransport's retry and size rules, against the local Lambda host with
 * the real Lambda client (the stage functions here are fixtures that sleep).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LambdaHost } from '../packages/tools/src/lambda-host/host.js';
import { LambdaTransport } from '../packages/core/src/lambda/transport.js';
import { backoffMs, classifyInvokeError, retryAfterSeconds } from '../packages/core/src/lambda/retry.js';
import { lambdaStageConcurrency, LAMBDA_UNRESERVED_CONCURRENCY } from '../packages/core/src/lambda/concurrency.js';
import type { Manifest, OnnxStage } from '../packages/core/src/manifest/types.js';
import type { Item } from '../packages/core/src/tensor/types.js';
import { EnsembleError, OverloadedError, PayloadTooLargeError } from '../packages/core/src/errors.js';
import { REPO } from './helpers/pipelines.js';

const FIXTURES = path.join(REPO, 'packages/tools/test/lambda-host/fixtures');

describe('backoff', () => {
  const policy = { baseMs: 50, capMs: 2000 };

  it('is full jitter under an exponential ceiling that stops at the cap', () => {
    expect(backoffMs(0, policy, undefined, () => 0.999)).toBeLessThan(50);
    expect(backoffMs(3, policy, undefined, () => 0.5)).toBe(200);
    expect(backoffMs(10, policy, undefined, () => 1)).toBe(2000);
    expect(backoffMs(4, policy, undefined, () => 0)).toBe(0);
  });

  it("never retries sooner than the service's Retry-After", () => {
    expect(backoffMs(0, policy, 1, () => 0)).toBe(1000);
    expect(backoffMs(10, policy, 0.5, () => 1)).toBe(2000);
    expect(retryAfterSeconds({ retryAfterSeconds: '3' })).toBe(3);
    expect(retryAfterSeconds({ retryAfterSeconds: 'soon' })).toBeUndefined();
  });

  it('retries throttles, 5xx and dropped connections; nothing else', () => {
    expect(classifyInvokeError({ name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } })).toBe('throttle');
    expect(classifyInvokeError({ name: 'ServiceException', $fault: 'server', $metadata: { httpStatusCode: 500 } })).toBe('transient');
    expect(classifyInvokeError({ name: 'EC2ThrottledException', $metadata: { httpStatusCode: 502 } })).toBe('transient');
    expect(classifyInvokeError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe('transient');
    expect(classifyInvokeError({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } })).toBe('fatal');
    expect(classifyInvokeError({ name: 'RequestTooLargeException', $metadata: { httpStatusCode: 413 } })).toBe('fatal');
  });
});

describe('concurrency on Lambda', () => {
  const scale = (reservedConcurrency: number | undefined, instances = 1) => ({ scale: { instances, threads: 1, memoryMb: 1024, reservedConcurrency } as OnnxStage['scale'] });
  it('is the reserved concurrency when set, else a fan-out of at least LAMBDA_UNRESERVED_CONCURRENCY', () => {
    expect(lambdaStageConcurrency(scale(3))).toBe(3);
    expect(lambdaStageConcurrency(scale(undefined))).toBe(LAMBDA_UNRESERVED_CONCURRENCY);
    expect(lambdaStageConcurrency(scale(undefined, 40))).toBe(40);
  });
});

describe('LambdaTransport against the host', () => {
  let host: LambdaHost;
  /** A second host that sends Retry-After: 1 with its throttles. */
  let slowHost: LambdaHost;
  const manifest = (timeoutMs: number): Manifest => ({
    name: 'p', version: '1', stages: [{ name: 's', kind: 'onnx', timeoutMs, scale: { instances: 1, threads: 1, memoryMb: 128 } }],
  }) as unknown as Manifest;
  const transport = (env: Record<string, string>, opts: Partial<ConstructorParameters<typeof LambdaTransport>[0]> = {}) => new LambdaTransport({
    env: { AWS_REGION: 'us-east-1', ENSEMBLE_LAMBDA_ENDPOINT: host.url, ...env }, log: () => undefined, ...opts,
  });
  const item: Item = { x: { datatype: 'FP32', shape: [1], data: Float32Array.of(1) } };

  beforeAll(async () => {
    host = await LambdaHost.start({
      functions: [
        { name: 'Busy', handler: 'handlers.sleepy', root: FIXTURES, memoryMb: 128, timeoutSeconds: 1, environment: {}, reservedConcurrency: 1 },
        { name: 'One', handler: 'handlers.stageEcho', root: FIXTURES, memoryMb: 128, timeoutSeconds: 5, environment: {}, reservedConcurrency: 1 },
      ],
      log: () => undefined,
    });
    slowHost = await LambdaHost.start({
      functions: [{ name: 'Busy', handler: 'handlers.sleepy', root: FIXTURES, memoryMb: 128, timeoutSeconds: 1, environment: {}, reservedConcurrency: 1 }],
      retryAfterSeconds: 1,
      log: () => undefined,
    });
  });
  afterAll(async () => {
    await host?.close();
    await slowHost?.close();
  });

  it('reserved concurrency 1 and 4 chunks at once: the throttled ones are retried and all succeed', async () => {
    const t = transport({ ENSEMBLE_STAGE_FUNCTION_P_S: 'One' }, { retry: { baseMs: 20, capMs: 200 } });
    await t.load(manifest(10_000));
    try {
      const chunks = [0, 1, 2, 3].map((i): Item[] => [{ x: { datatype: 'FP32', shape: [1], data: Float32Array.of(i) } }]);
      const results = await Promise.all(chunks.map((c) => t.invoke('p', 's', c)));
      expect(results.map((r) => {
        const o = r.outcomes[0];
        if (!o.ok) throw new Error(o.error);
        return Array.from(o.items[0].x.data as Float32Array);
      })).toEqual([[0], [1], [2], [3]]);
      const reports = host.reports('One');
      expect(reports.filter((r) => r.outcome === 'ok')).toHaveLength(4);
      expect(reports.filter((r) => r.outcome === 'throttled').length).toBeGreaterThanOrEqual(3);
      expect(host.environments('One')).toHaveLength(1);
    } finally {
      await t.close();
    }
  });

  it("honours Retry-After: a throttle that says 1 s ends a 400 ms call at once with 429, instead of retrying early", async () => {
    const env = { ENSEMBLE_STAGE_FUNCTION_P_S: 'Busy', ENSEMBLE_LAMBDA_ENDPOINT: slowHost.url };
    const holder = transport(env);
    const t = transport(env);
    await holder.load(manifest(5000));
    await t.load(manifest(400));
    try {
      // The handler sleeps 60 s unless told otherwise: this call holds the one slot until the host times it out (1 s).
      const holding = holder.invoke('p', 's', [item]).catch((e: unknown) => e);
      for (let i = 0; i < 100 && !slowHost.environments('Busy').some((e) => e.state === 'busy'); i++) await new Promise((r) => setTimeout(r, 20));
      const before = slowHost.reports('Busy').length;
      const err = await t.invoke('p', 's', [item]).catch((e: unknown) => e);
      expect(err, String(err)).toBeInstanceOf(OverloadedError);
      expect((err as OverloadedError).retryAfterSeconds).toBe(1);
      expect((err as OverloadedError).message).toContain("stage 's': Lambda Busy is at its concurrency limit (throttled 1 times");
      expect(slowHost.reports('Busy').slice(before).map((r) => r.outcome)).toEqual(['throttled']);
      await holding;
    } finally {
      await holder.close();
      await t.close();
    }
  });

  it('gives up on the caller\'s abort signal without waiting for the function', async () => {
    const t = transport({ ENSEMBLE_STAGE_FUNCTION_P_S: 'Busy' });
    await t.load(manifest(5000));
    try {
      const abort = new AbortController();
      const running = t.invoke('p', 's', [item], abort.signal).catch((e: unknown) => e);
      setTimeout(() => abort.abort(new EnsembleError('client went away', 'cancelled')), 100);
      const err = await running;
      expect(err).toBeInstanceOf(EnsembleError);
      expect((err as EnsembleError).code).toBe('cancelled');
    } finally {
      await t.close();
    }
  });

  it('refuses a batch over 6 MB with 413 when it has no bucket to pass it through', async () => {
    const t = transport({ ENSEMBLE_STAGE_FUNCTION_P_S: 'Busy' });
    await t.load(manifest(5000));
    const big: Item = { x: { datatype: 'FP32', shape: [2_000_000], data: new Float32Array(2_000_000) } };
    const err = await t.invoke('p', 's', [big]).catch((e: unknown) => e);
    await t.close();
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect((err as PayloadTooLargeError).message).toContain("stage 's': a batch of 1 items is 10.2 MB, over Lambda's 6 MB invoke limit, and the gateway has no bucket");
  });
});
