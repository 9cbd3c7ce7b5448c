import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { EnsembleError } from '@ensemble/core/errors.js';
import { isNotFound, s3Url } from '@ensemble/core/storage/s3-errors.js';
import { SHA256_METADATA } from '@ensemble/core/storage/s3-weights.js';
import { bareEtag, fileDigests, type FileDigests } from './etag.js';

/** Files larger than one part go up in parts; S3's minimum part is 5 MiB. */
export const PART_SIZE = 8 * 1024 * 1024;
export const UPLOAD_QUEUE_SIZE = 4;

export interface PushOptions {
  s3: S3Client;
  bucket: string;
  key: string;
  file: string;
  /** The file's digests, computed from it when not given. */
  digests?: FileDigests;
  onProgress?: (sent: number, total: number) => void;
}

export interface PushResult {
  key: string;
  sha256: string;
  size: number;
  /** The object was already there with the same content; nothing was sent. */
  skipped: boolean;
  /** The object claimed this sha256 but its bytes differed; it was uploaded again. */
  repaired?: true;
}

/**
 * Upload a weights file with its sha256 in the object metadata, unless S3
 * already has that exact content. The metadata alone proves nothing about the
 * bytes (an object overwritten or damaged keeps it), so an object counts as up
 * to date only when its size matches and its ETag is the MD5 (or multipart
 * MD5) this file would get; when the ETag cannot tell (another part size,
 * SSE-KMS), the object's bytes are downloaded and hashed.
 */
export async function pushObject(opts: PushOptions): Promise<PushResult> {
  const { s3, bucket, key, file, onProgress } = opts;
  const digests = opts.digests ?? (await fileDigests(file, PART_SIZE));
  const { sha256, size } = digests;

  const remote = await remoteState(s3, bucket, key, digests);
  if (remote === 'same') return { key, sha256, size, skipped: true };

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
  const result: PushResult = { key, sha256, size, skipped: false };
  if (remote === 'damaged') result.repaired = true;
  return result;
}

/** 'absent' or 'other' (another version's sha256): upload; 'damaged': it claims this sha256 but holds other bytes. */
async function remoteState(s3: S3Client, bucket: string, key: string, local: FileDigests): Promise<'same' | 'absent' | 'other' | 'damaged'> {
  let head;
  try {
    head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (e) {
    if (isNotFound(e)) return 'absent';
    throw e;
  }
  if (head.Metadata?.[SHA256_METADATA]?.toLowerCase() !== local.sha256) return 'other';
  if (head.ContentLength !== local.size) return 'damaged';
  const etag = bareEtag(head.ETag);
  if (etag === local.etag || etag === local.multipartEtag) return 'same';
  // An ETag we cannot compute (uploaded with other parts, or encrypted with KMS): only the bytes can say.
  return (await objectSha256(s3, bucket, key)) === local.sha256 ? 'same' : 'damaged';
}

async function objectSha256(s3: S3Client, bucket: string, key: string): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!(out.Body instanceof Readable)) throw new EnsembleError(`${s3Url(bucket, key)}: S3 returned no body`);
  const hash = createHash('sha256');
  for await (const chunk of out.Body as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
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
