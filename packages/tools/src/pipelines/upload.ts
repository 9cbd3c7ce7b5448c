import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { EnsembleError } from '@ensemble/core/errors.js';
import { sha256File } from '@ensemble/core/storage/hash.js';
import { isNotFound, s3Url } from '@ensemble/core/storage/s3-errors.js';
import { SHA256_METADATA } from '@ensemble/core/storage/s3-weights.js';

/** Files larger than one part go up in parts; S3's minimum part is 5 MiB. */
export const PART_SIZE = 8 * 1024 * 1024;
export const UPLOAD_QUEUE_SIZE = 4;

export interface PushOptions {
  s3: S3Client;
  bucket: string;
  key: string;
  file: string;
  /** Computed from the file when not given. */
  sha256?: string;
  onProgress?: (sent: number, total: number) => void;
}

export interface PushResult {
  key: string;
  sha256: string;
  size: number;
  /** The object was already there with the same sha256; nothing was sent. */
  skipped: boolean;
}

/** Upload a weights file with its sha256 in the object metadata, unless S3 already has that exact content. */
export async function pushObject(opts: PushOptions): Promise<PushResult> {
  const { s3, bucket, key, file, onProgress } = opts;
  const size = (await stat(file)).size;
  const sha256 = opts.sha256?.toLowerCase() ?? (await sha256File(file));

  if ((await recordedSha256(s3, bucket, key)) === sha256) return { key, sha256, size, skipped: true };

  const upload = new Upload({
    client: s3,
    params: {
      Bucket: bucket,
      Key: key,
      Body: createReadStream(file),
      ContentLength: size,
      ContentType: 'application/octet-stream',
      Metadata: { [SHA256_METADATA]: sha256 },
    },
    partSize: PART_SIZE,
    queueSize: UPLOAD_QUEUE_SIZE,
    // A failed push must not leave paid-for orphan parts behind.
    leavePartsOnError: false,
  });
  if (onProgress) {
    upload.on('httpUploadProgress', (p) => onProgress(p.loaded ?? 0, p.total ?? size));
  }
  await upload.done();
  return { key, sha256, size, skipped: false };
}

async function recordedSha256(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const out = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return out.Metadata?.[SHA256_METADATA];
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

export async function putJson(s3: S3Client, bucket: string, key: string, value: unknown): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: JSON.stringify(value),
      ContentType: 'application/json',
    }),
  );
}

/** The parsed object, or undefined when there is no such key. */
export async function getJson<T = unknown>(s3: S3Client, bucket: string, key: string): Promise<T | undefined> {
  let text: string;
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!out.Body) return undefined;
    text = await out.Body.transformToString('utf8');
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new EnsembleError(`${s3Url(bucket, key)} is not valid JSON: ${(e as Error).message}`);
  }
}
