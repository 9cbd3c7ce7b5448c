/**
 * `npm start -- --transport lambda`: the gateway reaches every ONNX stage
 * with Invoke, as on AWS, through a local Lambda host the server starts,
 * whose functions are the ones the deployment plan names.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { decodeStageResponse, encodeStageRequest } from '../packages/core/src/lambda/payload.js';
import { README_BODY, README_X, demoExpected, expectClose } from './helpers/demo.js';
import { runCli, startServe, type ServeProcess } from './helpers/cli.js';

let root: string;
let server: ServeProcess | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-lambda-serve-'));
});

afterAll(async () => {
  if (server && server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
  await rm(root, { recursive: true, force: true });
});

describe('ensemble serve --transport lambda', () => {
  it('serves the demo through Lambda Invoke and records transport lambda', async () => {
    server = await startServe(['--port', '0', '--data', join(root, 'data'), '--pipeline', 'demo', '--transport', 'lambda']);
    const res = await fetch(`${server.url}/v2/models/demo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: README_BODY });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { outputs: { data: number[] }[]; parameters: { run_id: string } };
    expectClose(body.outputs[0].data, demoExpected(README_X));
    // Records are written behind the response: ask until it is there.
    let rec: RunRecord | undefined;
    for (let i = 0; i < 50 && !rec; i++) {
      const r = await fetch(`${server.url}/v2/runs/${body.parameters.run_id}`);
      if (r.status === 200) rec = (await r.json()) as RunRecord;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(rec).toMatchObject({ status: 'succeeded', transport: 'lambda' });
    expect(rec?.stages.find((s) => s.stage === 'branch_a')).toMatchObject({ coldStart: true });
  }, 120_000);

  it('exposes the Invoke API of its host, with the functions the plan names', async () => {
    const endpoint = /local Lambda host on (http:\/\/\S+)/.exec(server!.stderr())?.[1];
    expect(endpoint).toBeDefined();
    const client = new LambdaClient({ region: 'us-east-1', endpoint, maxAttempts: 1, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    try {
      const out = await client.send(new InvokeCommand({
        FunctionName: 'DemoBranchB',
        Payload: Buffer.from(JSON.stringify(encodeStageRequest('demo', 'branch_b', [{ input: { datatype: 'FP32', shape: [4], data: Float32Array.of(1, 2, 3, 4) } }]))),
      }));
      expect(out.FunctionError).toBeUndefined();
      const result = decodeStageResponse(JSON.parse(Buffer.from(out.Payload!).toString()), 'branch_b');
      // Warm: the gateway's request already started this function's environment.
      expect(result.coldStart).toBe(false);
      expect(result.outcomes).toHaveLength(1);
    } finally {
      client.destroy();
    }
  });

  it('stops cleanly on SIGTERM', async () => {
    server!.child.kill('SIGTERM');
    expect(await server!.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses an unknown transport', async () => {
    const r = await runCli(['serve', '--transport', 'carrier-pigeon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--transport must be local or lambda, got 'carrier-pigeon'");
  });
});
