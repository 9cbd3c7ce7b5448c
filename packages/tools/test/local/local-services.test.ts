import { afterEach, describe, expect, it } from 'vitest';
import { DeleteObjectCommand, GetObjectCommand, ListBucketsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ensureBucket } from '../../src/local/bucket.js';
import { ensureRunsTable } from '../../../core/src/storage/runs-table.js';
import { startLocal, tempDir, type Local } from '../../../core/test/storage/local.js';

describe('local services', () => {
  const open: Local[] = [];
  const dirs: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const l of open.splice(0)) await l.close();
    for (const c of dirs.splice(0)) await c();
  });

  it('deletes and writes objects side by side in one folder without losing a write', async () => {
    // s3rver removed a key's folder once empty, racing a PutObject into it (ENOENT, a PUT that never answers).
    const { dir, cleanup } = await tempDir('local-race');
    dirs.push(cleanup);
    const local = await startLocal(dir);
    open.push(local);
    await ensureBucket(local.s3, 'weights');
    const body = Buffer.alloc(256 * 1024, 7);
    for (let round = 0; round < 30; round++) {
      const old = `spill/day/${round}-old.json`;
      const fresh = `spill/day/${round}-new.json`;
      await local.s3.send(new PutObjectCommand({ Bucket: 'weights', Key: old, Body: body }));
      await Promise.all([
        local.s3.send(new DeleteObjectCommand({ Bucket: 'weights', Key: old })),
        local.s3.send(new PutObjectCommand({ Bucket: 'weights', Key: fresh, Body: body })),
      ]);
      const got = await local.s3.send(new GetObjectCommand({ Bucket: 'weights', Key: fresh }));
      expect((await got.Body!.transformToByteArray()).byteLength).toBe(body.byteLength);
      await local.s3.send(new DeleteObjectCommand({ Bucket: 'weights', Key: fresh }));
    }
  });

  it('serves S3 and DynamoDB on free loopback ports through the real SDK', async () => {
    const { dir, cleanup } = await tempDir('local');
    dirs.push(cleanup);
    const local = await startLocal(dir);
    open.push(local);
    expect(local.services.s3Endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(local.services.dynamoEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(local.services.s3Endpoint).not.toBe(local.services.dynamoEndpoint);

    await ensureBucket(local.s3, 'weights');
    await ensureBucket(local.s3, 'weights'); // idempotent
    const buckets = await local.s3.send(new ListBucketsCommand({}));
    expect(buckets.Buckets?.map((b) => b.Name)).toEqual(['weights']);

    await ensureRunsTable(local.dynamo, 'runs');
    await ensureRunsTable(local.dynamo, 'runs'); // idempotent
    const tables = await local.dynamo.send(new ListTablesCommand({}));
    expect(tables.TableNames).toEqual(['runs']);
  });

  it('keeps buckets, objects and tables across a restart with the same dataDir', async () => {
    const { dir, cleanup } = await tempDir('local-restart');
    dirs.push(cleanup);
    const first = await startLocal(dir);
    await ensureBucket(first.s3, 'weights');
    await first.s3.send(new PutObjectCommand({ Bucket: 'weights', Key: 'a/b.txt', Body: 'hello weights' }));
    await ensureRunsTable(first.dynamo, 'runs');
    await first.close();

    const second = await startLocal(dir);
    open.push(second);
    const out = await second.s3.send(new GetObjectCommand({ Bucket: 'weights', Key: 'a/b.txt' }));
    expect(await out.Body!.transformToString()).toBe('hello weights');
    const tables = await second.dynamo.send(new ListTablesCommand({}));
    expect(tables.TableNames).toEqual(['runs']);
  });

  it('close() can be called twice and releases the ports', async () => {
    const { dir, cleanup } = await tempDir('local-close');
    dirs.push(cleanup);
    const local = await startLocal(dir);
    await local.close();
    await local.services.close();
    await expect(local.s3.send(new ListBucketsCommand({}))).rejects.toThrow();
  });
});
