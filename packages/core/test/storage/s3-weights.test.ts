import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { EnsembleError } from '../../src/errors.js';
import { ensureBucket } from '@ensemble/tools/local/bucket.js';
import { makeS3Client } from '../../src/storage/config.js';
import { pushObject } from '@ensemble/tools/pipelines/upload.js';
import { S3WeightStore } from '../../src/storage/s3-weights.js';
import { countCommands, startLocal, tempDir, type Local } from './local.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('S3WeightStore', () => {
  let local: Local | undefined;
  let dataDir: string;
  let work: string;
  let cleanups: Array<() => Promise<void>>;

  beforeEach(async () => {
    cleanups = [];
    const data = await tempDir('weights-data');
    const scratch = await tempDir('weights-work');
    cleanups.push(data.cleanup, scratch.cleanup);
    dataDir = data.dir;
    work = scratch.dir;
    local = await startLocal(dataDir);
    await ensureBucket(local.s3, 'weights');
  });
  afterEach(async () => {
    await local?.close();
    local = undefined;
    for (const c of cleanups) await c();
  });

  async function pushBytes(key: string, bytes: Buffer): Promise<string> {
    const file = join(work, `upload-${sha(key)}`);
    await writeFile(file, bytes);
    return (await pushObject({ s3: local!.s3, bucket: 'weights', key, file })).sha256;
  }

  it('downloads, verifies and caches by hash', async () => {
    const bytes = Buffer.from('pretend onnx weights '.repeat(1000));
    const hash = await pushBytes('models/det.onnx', bytes);
    expect(hash).toBe(sha(bytes));

    const cacheDir = join(work, 'cache');
    const store = new S3WeightStore({ s3: local!.s3, bucket: 'weights', cacheDir });
    const path = await store.resolve('models/det.onnx', hash);
    expect(path).toBe(join(cacheDir, 'sha256', hash));
    expect(await readFile(path)).toEqual(bytes);
    // Only the final file is left, no temp files.
    expect(await readdir(join(cacheDir, 'sha256'))).toEqual([hash]);

    expect(await store.head('models/det.onnx')).toEqual({ exists: true, sha256: hash, size: bytes.length });
    expect(await store.head('models/none.onnx')).toEqual({ exists: false });
  });

  it('shares one download between concurrent resolves and never downloads a cached hash again', async () => {
    const bytes = Buffer.alloc(300_000, 7);
    const hash = await pushBytes('w.bin', bytes);
    const s3 = makeS3Client(local!.settings);
    const counts = countCommands(s3);
    const cacheDir = join(work, 'cache');
    const store = new S3WeightStore({ s3, bucket: 'weights', cacheDir });

    const paths = await Promise.all([store.resolve('w.bin', hash), store.resolve('w.bin', hash), store.resolve('w.bin', hash.toUpperCase())]);
    expect(new Set(paths).size).toBe(1);
    expect(counts.get('GetObjectCommand')).toBe(1);

    // A new store over the same cache (a restarted process) finds the file without asking S3.
    const again = new S3WeightStore({ s3, bucket: 'weights', cacheDir });
    expect(await again.resolve('w.bin', hash)).toBe(paths[0]);
    expect(counts.get('GetObjectCommand')).toBe(1);
    s3.destroy();
  });

  it('serves a cached file after a restart with S3 stopped', async () => {
    const bytes = Buffer.from('cached across restarts');
    const hash = await pushBytes('c.bin', bytes);
    const cacheDir = join(work, 'cache');
    await new S3WeightStore({ s3: local!.s3, bucket: 'weights', cacheDir }).resolve('c.bin', hash);

    const settings = local!.settings;
    await local!.close();
    local = undefined;

    // The endpoint now refuses connections: any S3 call would fail.
    const s3 = makeS3Client({ ...settings });
    const store = new S3WeightStore({ s3, bucket: 'weights', cacheDir });
    const path = await store.resolve('c.bin', hash);
    expect(await readFile(path)).toEqual(bytes);
    await expect(store.head('c.bin')).rejects.toThrow();
    s3.destroy();
  });

  it('checks a cached file on every load: a changed byte is deleted and fetched again from S3', async () => {
    const bytes = Buffer.alloc(100_000, 3);
    const hash = await pushBytes('t.bin', bytes);
    const s3 = makeS3Client(local!.settings);
    const counts = countCommands(s3);
    const cacheDir = join(work, 'cache');
    const path = await new S3WeightStore({ s3, bucket: 'weights', cacheDir }).resolve('t.bin', hash);

    const tampered = Buffer.from(bytes);
    tampered[5000] ^= 0xff;
    await writeFile(path, tampered);
    // A restarted process, and the same process again: both notice.
    const store = new S3WeightStore({ s3, bucket: 'weights', cacheDir });
    expect(await store.resolve('t.bin', hash)).toBe(path);
    expect((await readFile(path)).equals(bytes)).toBe(true);
    expect(counts.get('GetObjectCommand')).toBe(2);

    await writeFile(path, tampered);
    expect(await store.resolve('t.bin', hash)).toBe(path);
    expect((await readFile(path)).equals(bytes)).toBe(true);
    expect(counts.get('GetObjectCommand')).toBe(3);

    // Unchanged, it is served from the cache.
    await store.resolve('t.bin', hash);
    expect(counts.get('GetObjectCommand')).toBe(3);
    s3.destroy();
  });

  it('rejects a hash mismatch, naming key and both hashes, and caches nothing', async () => {
    const bytes = Buffer.from('the real content');
    const actual = await pushBytes('bad.onnx', bytes);
    const wrong = sha('something else');
    const cacheDir = join(work, 'cache');
    const store = new S3WeightStore({ s3: local!.s3, bucket: 'weights', cacheDir });

    const err = await store.resolve('bad.onnx', wrong).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnsembleError);
    const message = (err as Error).message;
    expect(message).toContain('s3://weights/bad.onnx');
    expect(message).toContain(wrong);
    expect(message).toContain(actual);
    expect(await readdir(join(cacheDir, 'sha256'))).toEqual([]);

    // The right hash still works afterwards.
    expect(await readFile(await store.resolve('bad.onnx', actual))).toEqual(bytes);
  });

  it('streams an object of many chunks through the hash to the file: intact it lands whole, one corrupted byte near its end is refused', async () => {
    // Several MB: many body chunks and several 1 MB file writes, so a chunk missed by the hash or the file would show.
    const bytes = Buffer.alloc(6 * 1024 * 1024 + 12_345);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    const hash = await pushBytes('big.onnx', bytes);
    const cacheDir = join(work, 'cache');
    const store = new S3WeightStore({ s3: local!.s3, bucket: 'weights', cacheDir });
    const path = await store.resolve('big.onnx', hash);
    expect((await readFile(path)).equals(bytes)).toBe(true);
    expect(store.timing(hash)!.fetchMs).toBeGreaterThan(0);

    const corrupted = Buffer.from(bytes);
    corrupted[corrupted.length - 100] ^= 0x01;
    await local!.s3.send(new PutObjectCommand({ Bucket: 'weights', Key: 'corrupted.onnx', Body: corrupted }));
    const fresh = new S3WeightStore({ s3: local!.s3, bucket: 'weights', cacheDir: join(work, 'cache2') });
    const err = await fresh.resolve('corrupted.onnx', hash).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnsembleError);
    expect((err as Error).message).toBe(`weights object s3://weights/corrupted.onnx has sha256 ${sha(corrupted)}, expected ${hash}`);
    // Neither the file nor its partial download is left behind.
    expect(await readdir(join(work, 'cache2', 'sha256'))).toEqual([]);
  });

  it('detects an object overwritten with other content after its hash was recorded', async () => {
    const hash = await pushBytes('swapped.onnx', Buffer.from('version one'));
    await local!.s3.send(new PutObjectCommand({ Bucket: 'weights', Key: 'swapped.onnx', Body: 'version two' }));
    const store = new S3WeightStore({ s3: local!.s3, bucket: 'weights', cacheDir: join(work, 'cache') });
    await expect(store.resolve('swapped.onnx', hash)).rejects.toThrow(`expected ${hash}`);
  });

  it('says which object is missing', async () => {
    const store = new S3WeightStore({ s3: local!.s3, bucket: 'weights', cacheDir: join(work, 'cache') });
    const err = await store.resolve('models/missing.onnx', sha('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnsembleError);
    expect((err as Error).message).toBe('weights object s3://weights/models/missing.onnx not found');

    const noBucket = new S3WeightStore({ s3: local!.s3, bucket: 'no-such-bucket', cacheDir: join(work, 'cache') });
    await expect(noBucket.resolve('m.onnx', sha('x'))).rejects.toThrow('weights object s3://no-such-bucket/m.onnx not found');
  });

  it('rejects a sha256 that is not a hex digest before touching S3', async () => {
    const store = new S3WeightStore({ s3: local!.s3, bucket: 'weights', cacheDir: join(work, 'cache') });
    await expect(store.resolve('a.onnx', 'abc')).rejects.toThrow("'abc' is not a sha256 hex digest");
  });
});
