import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { EnsembleError } from '../errors.js';
import { isSha256, sha256File } from './hash.js';
import { isNotFound, s3Url } from './s3-errors.js';
import type { WeightStore, WeightTiming } from './types.js';

export interface S3WeightStoreOptions {
  s3: S3Client;
  bucket: string;
  /** Files land in `<cacheDir>/sha256/<hash>`; the cache is keyed by content, not by S3 key. */
  cacheDir: string;
}

/** The file stream's buffer: the body's chunks (tens of KB) reach the disk in writes of up to this. */
const WRITE_CHUNK_BYTES = 1 << 20;

/** Metadata key holding an object's sha256 (`x-amz-meta-sha256` on the wire). */
export const SHA256_METADATA = 'sha256';

export class S3WeightStore implements WeightStore {
  private readonly s3: S3Client;
  private readonly bucket: string;
  private readonly dir: string;
  /** One download per hash, however many stages ask at once. */
  private readonly downloads = new Map<string, Promise<string>>();
  /**
   * Files this process has hashed, with the stat they had then: a second
   * load of an unchanged file (verify, then the transport) is not hashed again.
   */
  private readonly verified = new Map<string, string>();
  /** By sha256: where its last resolve spent its time. */
  private readonly timings = new Map<string, WeightTiming>();

  constructor(opts: S3WeightStoreOptions) {
    this.s3 = opts.s3;
    this.bucket = opts.bucket;
    this.dir = join(opts.cacheDir, 'sha256');
  }

  async resolve(key: string, sha256: string): Promise<string> {
    const expected = sha256.toLowerCase();
    if (!isSha256(expected)) {
      throw new EnsembleError(`weights object ${s3Url(this.bucket, key)}: '${sha256}' is not a sha256 hex digest`);
    }
    const path = join(this.dir, expected);
    // A file on disk can change after it was downloaded (disk fault, a hand edit, another tool):
    // check it before every load, and fetch it again when it no longer matches.
    const t0 = performance.now();
    if (await this.cachedMatches(path, expected)) {
      this.timings.set(expected, { fetchMs: 0, hashMs: performance.now() - t0 });
      return path;
    }

    let download = this.downloads.get(expected);
    if (!download) {
      download = this.download(key, expected, path).finally(() => this.downloads.delete(expected));
      this.downloads.set(expected, download);
    }
    return download;
  }

  timing(sha256: string): WeightTiming | undefined {
    return this.timings.get(sha256.toLowerCase());
  }

  async head(key: string): Promise<{ exists: boolean; sha256?: string; size?: number }> {
    try {
      const out = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      const result: { exists: boolean; sha256?: string; size?: number } = { exists: true };
      const recorded = out.Metadata?.[SHA256_METADATA];
      if (recorded) result.sha256 = recorded;
      if (out.ContentLength !== undefined) result.size = out.ContentLength;
      return result;
    } catch (e) {
      if (isNotFound(e)) return { exists: false };
      throw e;
    }
  }

  /** Whether the cached file exists and hashes to `expected`; a mismatch is deleted. */
  private async cachedMatches(path: string, expected: string): Promise<boolean> {
    const before = await fileStamp(path);
    if (before === undefined) return false;
    if (this.verified.get(path) === before) return true;
    const actual = await sha256File(path);
    if (actual === expected && (await fileStamp(path)) === before) {
      this.verified.set(path, before);
      return true;
    }
    this.verified.delete(path);
    console.error(`[ensemble] cached weights ${path} have sha256 ${actual}, expected ${expected}; fetching them again`);
    await unlink(path).catch(() => {});
    return false;
  }

  private async download(key: string, expected: string, path: string): Promise<string> {
    const url = s3Url(this.bucket, key);
    const t0 = performance.now();
    let body: Readable;
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!(out.Body instanceof Readable)) throw new EnsembleError(`weights object ${url}: S3 returned no body`);
      body = out.Body;
    } catch (e) {
      if (isNotFound(e)) throw new EnsembleError(`weights object ${url} not found`, 'internal');
      throw e;
    }

    await mkdir(this.dir, { recursive: true });
    // Same folder as the target so the rename is atomic; random so concurrent processes never share it.
    const tmp = join(this.dir, `.${expected}.${process.pid}.${randomBytes(6).toString('hex')}.part`);
    const hash = createHash('sha256');
    // One pass: every chunk is hashed as it goes by on its way to the file (a second 'data' listener beside the pipe's,
    // no Transform hop), so the object is neither held in memory nor read back to check it. Hashing's share is the
    // time in update(); the rest is fetching and writing.
    let hashMs = 0;
    body.on('data', (chunk: Buffer) => {
      const h0 = performance.now();
      hash.update(chunk);
      hashMs += performance.now() - h0;
    });
    try {
      // Large writes: fewer write calls for weights of tens of MB.
      await pipeline(body, createWriteStream(tmp, { highWaterMark: WRITE_CHUNK_BYTES }));
      const actual = hash.digest('hex');
      if (actual !== expected) {
        throw new EnsembleError(`weights object ${url} has sha256 ${actual}, expected ${expected}`);
      }
      await rename(tmp, path);
      this.timings.set(expected, { fetchMs: Math.max(0, performance.now() - t0 - hashMs), hashMs });
      const stamp = await fileStamp(path);
      if (stamp !== undefined) this.verified.set(path, stamp);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    return path;
  }
}

/** What changes when a file's content is rewritten: inode, size and modification time; undefined when absent. */
async function fileStamp(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path, { bigint: true });
    return s.isFile() ? `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}` : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
