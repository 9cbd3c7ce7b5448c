import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ensureBucket } from '../../src/local/bucket.js';
import { makeS3Client } from '../../../core/src/storage/config.js';
import { getJson, PART_SIZE, pushObject, putJson } from '../../src/pipelines/upload.js';
import { S3WeightStore } from '../../../core/src/storage/s3-weights.js';
import { countCommands, startLocal, tempDir, type Local } from '../../../core/test/storage/local.js';

describe('pushObject', () => {
  let local: Local;
  let work: string;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    const data = await tempDir('push-data');
    const scratch = await tempDir('push-work');
    cleanups.push(data.cleanup, scratch.cleanup);
    work = scratch.dir;
    local = await startLocal(data.dir);
    await ensureBucket(local.s3, 'weights');
  });
  afterAll(async () => {
    await local?.close();
    for (const c of cleanups) await c();
  });

  it('uploads a large file in parts with progress, and the download verifies', async () => {
    // Not a multiple of the part size, so the last part is short.
    const size = 20 * 1024 * 1024 + 12345;
    const bytes = randomBytes(size);
    const file = join(work, 'big.onnx');
    await writeFile(file, bytes);
    const expected = createHash('sha256').update(bytes).digest('hex');

    const s3 = makeS3Client(local.settings);
    const counts = countCommands(s3);
    const progress: Array<[number, number]> = [];
    const result = await pushObject({
      s3,
      bucket: 'weights',
      key: 'big/model.onnx',
      file,
      onProgress: (sent, total) => progress.push([sent, total]),
    });
    expect(result).toEqual({ key: 'big/model.onnx', sha256: expected, size, skipped: false });
    expect(counts.get('CreateMultipartUploadCommand')).toBe(1);
    expect(counts.get('UploadPartCommand')).toBe(Math.ceil(size / PART_SIZE));
    expect(counts.get('CompleteMultipartUploadCommand')).toBe(1);
    expect(counts.get('PutObjectCommand')).toBeUndefined();

    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.every(([, total]) => total === size)).toBe(true);
    expect(Math.max(...progress.map(([sent]) => sent))).toBe(size);

    const head = await s3.send(new HeadObjectCommand({ Bucket: 'weights', Key: 'big/model.onnx' }));
    expect(head.ContentLength).toBe(size);
    expect(head.Metadata?.sha256).toBe(expected);

    const path = await new S3WeightStore({ s3, bucket: 'weights', cacheDir: join(work, 'cache') }).resolve('big/model.onnx', expected);
    expect((await readFile(path)).equals(bytes)).toBe(true);

    // Pushed again, its multipart ETag says it is the same: no upload, no download.
    const gets = counts.get('GetObjectCommand');
    expect((await pushObject({ s3, bucket: 'weights', key: 'big/model.onnx', file })).skipped).toBe(true);
    expect(counts.get('GetObjectCommand')).toBe(gets);
    expect(counts.get('CreateMultipartUploadCommand')).toBe(1);
    s3.destroy();
  });

  it('sends a small file in one PUT and skips it when S3 already has the same sha256', async () => {
    const file = join(work, 'small.onnx');
    await writeFile(file, 'small weights');
    const s3 = makeS3Client(local.settings);
    const counts = countCommands(s3);

    const first = await pushObject({ s3, bucket: 'weights', key: 'small.onnx', file });
    expect(first.skipped).toBe(false);
    expect(counts.get('PutObjectCommand')).toBe(1);
    expect(counts.get('CreateMultipartUploadCommand')).toBeUndefined();

    const second = await pushObject({ s3, bucket: 'weights', key: 'small.onnx', file });
    expect(second).toEqual({ ...first, skipped: true });
    expect(counts.get('PutObjectCommand')).toBe(1);

    // New content under the same key is uploaded again.
    await writeFile(file, 'small weights, retrained');
    const third = await pushObject({ s3, bucket: 'weights', key: 'small.onnx', file });
    expect(third.skipped).toBe(false);
    expect(third.sha256).not.toBe(first.sha256);
    expect(counts.get('PutObjectCommand')).toBe(2);
    s3.destroy();
  });

  it('repairs an object whose bytes no longer match the sha256 its metadata claims', async () => {
    const bytes = randomBytes(50_000);
    const file = join(work, 'damaged.onnx');
    await writeFile(file, bytes);
    const s3 = makeS3Client(local.settings);
    const counts = countCommands(s3);
    const first = await pushObject({ s3, bucket: 'weights', key: 'damaged.onnx', file });

    // One byte changed in the bucket, the metadata left as it was: same size, same claimed sha256.
    const damaged = Buffer.from(bytes);
    damaged[1234] ^= 0x01;
    await s3.send(new PutObjectCommand({ Bucket: 'weights', Key: 'damaged.onnx', Body: damaged, Metadata: { sha256: first.sha256 } }));
    const puts = counts.get('PutObjectCommand')!;

    // The ETag differs, which an encrypted object's would too: the object's bytes are hashed to be sure.
    const again = await pushObject({ s3, bucket: 'weights', key: 'damaged.onnx', file });
    expect(again).toEqual({ ...first, skipped: false, repaired: true });
    expect(counts.get('GetObjectCommand')).toBe(1);
    expect(counts.get('PutObjectCommand')).toBe(puts + 1);
    const path = await new S3WeightStore({ s3, bucket: 'weights', cacheDir: join(work, 'cache-damaged') }).resolve('damaged.onnx', first.sha256);
    expect((await readFile(path)).equals(bytes)).toBe(true);

    // Repaired, it is up to date again, judged by size and ETag alone.
    const third = await pushObject({ s3, bucket: 'weights', key: 'damaged.onnx', file });
    expect(third.skipped).toBe(true);
    expect(counts.get('GetObjectCommand')).toBe(2);
    expect(counts.get('PutObjectCommand')).toBe(puts + 1);
    s3.destroy();
  });

  it('stores and reads JSON documents', async () => {
    const doc = { pipeline: 'ocr', stages: [{ name: 'det', sha256: 'ab'.repeat(32) }], note: 'ünïcode' };
    await putJson(local.s3, 'weights', 'manifests/ocr.json', doc);
    expect(await getJson(local.s3, 'weights', 'manifests/ocr.json')).toEqual(doc);
    expect(await getJson(local.s3, 'weights', 'manifests/none.json')).toBeUndefined();
  });
});
