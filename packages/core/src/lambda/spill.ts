import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { EnsembleError } from '../errors.js';
import { isNotFound, s3Url } from '../storage/s3-errors.js';
import { PAYLOAD_VERSION, type SpillRef } from './payload.js';
import { SPILL_PREFIX } from './environment.js';

export { SPILL_PREFIX };

/**
 * Stage payloads parked in S3 under SPILL_PREFIX and passed by reference.
 * The deployed bucket expires that prefix after a day (stacks/storage.ts),
 * so an object whose reader died before deleting it does not stay around. The gateway writes
 * request spills and deletes them once the call is over (a retried Invoke
 * reads the same object); a stage writes response spills and the gateway
 * deletes them after reading.
 */
export class PayloadSpill {
  constructor(private readonly s3: S3Client, readonly bucket: string, private readonly prefix = SPILL_PREFIX) {}

  async put(json: Buffer): Promise<SpillRef> {
    const key = `${this.prefix}${new Date().toISOString().slice(0, 10)}/${randomUUID()}.json`;
    await this.s3.send(new PutObjectCommand({
      Bucket: this.bucket, Key: key, Body: json, ContentLength: json.byteLength, ContentType: 'application/json',
    }));
    return { v: PAYLOAD_VERSION, spill: { key, bytes: json.byteLength } };
  }

  /** The parked payload, parsed. Only keys under the spill prefix: a reference must not read weights or anything else. */
  async get(ref: SpillRef): Promise<unknown> {
    const { key } = ref.spill;
    if (!key.startsWith(this.prefix) || key.includes('..')) {
      throw new EnsembleError(`payload reference ${JSON.stringify(key)} is not under ${this.prefix}`, 'invalid_input');
    }
    let text: string;
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      text = out.Body ? await out.Body.transformToString('utf8') : '';
    } catch (e) {
      if (isNotFound(e)) throw new EnsembleError(`payload ${s3Url(this.bucket, key)} is gone (deleted or expired)`, 'bad_gateway');
      throw e;
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw new EnsembleError(`payload ${s3Url(this.bucket, key)} is not JSON: ${(e as Error).message}`, 'bad_gateway');
    }
  }

  async delete(ref: SpillRef): Promise<void> {
    try {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: ref.spill.key }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
