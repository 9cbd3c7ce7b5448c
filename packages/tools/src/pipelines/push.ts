import { basename } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import { PART_SIZE, pushObject, putJson, type PushResult } from './upload.js';
import { fileDigests } from './etag.js';
import { createProgress } from '../util/progress.js';
import { EnsembleError } from '@ensemble/core/errors.js';

export interface PushPipelineOptions {
  s3: S3Client;
  bucket: string;
  /** Show a progress bar per uploaded file (CLI); off for servers and tests. */
  progress?: boolean;
  log?: (s: string) => void;
}

/** Where a pipeline version's record lives in the bucket. */
export function versionKey(name: string, version: string): string {
  return `pipelines/${name}/${version}.json`;
}

/**
 * Upload every ONNX stage's weights (skipping objects already there with the
 * same content, replacing any whose bytes no longer match their sha256) and
 * record the pipeline version in the bucket.
 */
export async function pushPipeline(m: Manifest, opts: PushPipelineOptions): Promise<PushResult[]> {
  const log = opts.log ?? (() => undefined);
  const results: PushResult[] = [];
  for (const s of m.stages) {
    if (s.kind !== 'onnx') continue;
    if (!s.weights.source) throw new EnsembleError(`${m.file}: stage '${s.name}': weights.source: needed to push`);
    const digests = await fileDigests(s.weights.source, PART_SIZE);
    const actual = digests.sha256;
    if (actual !== s.weights.sha256) {
      throw new EnsembleError(`${m.file}: stage '${s.name}': weights.sha256: ${s.weights.source} has sha256 ${actual}, the manifest pins ${s.weights.sha256}`);
    }
    let bar: ReturnType<typeof createProgress> | undefined;
    const r = await pushObject({
      s3: opts.s3, bucket: opts.bucket, key: s.weights.key, file: s.weights.source, digests,
      onProgress: opts.progress ? (sent, total) => {
        bar ??= createProgress(`${s.name} ${basename(s.weights.source!)}`, total);
        bar.update(sent);
      } : undefined,
    });
    bar?.done();
    log(`${r.skipped ? 'up to date' : r.repaired ? 'repaired' : 'pushed'}  s3://${opts.bucket}/${r.key}  ${r.size} bytes  sha256 ${r.sha256.slice(0, 12)}`);
    results.push(r);
  }
  await putJson(opts.s3, opts.bucket, versionKey(m.name, m.version), {
    name: m.name, version: m.version, pushedAt: new Date().toISOString(),
    stages: m.stages.map((s) => (s.kind === 'onnx' ? { name: s.name, kind: s.kind, key: s.weights.key, sha256: s.weights.sha256 } : { name: s.name, kind: s.kind })),
  });
  return results;
}
