/**
 * A WeightStore over the files a manifest names in `weights.source`, so a
 * pipeline can run straight from disk (ensemble verify) with no bucket. The
 * sha256 is checked on the first resolve, as the S3 store checks downloads.
 */
import { stat } from 'node:fs/promises';
import { EnsembleError } from '@ensemble/core/errors.js';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import { sha256File } from '@ensemble/core/storage/hash.js';
import type { WeightStore } from '@ensemble/core/storage/types.js';

export class LocalFileWeightStore implements WeightStore {
  private readonly sources = new Map<string, string>();
  private readonly verified = new Map<string, Promise<string>>();

  constructor(manifest: Manifest) {
    for (const s of manifest.stages) {
      if (s.kind === 'onnx' && s.weights.source) this.sources.set(s.weights.key, s.weights.source);
    }
  }

  async resolve(key: string, sha256: string): Promise<string> {
    const source = this.sources.get(key);
    if (!source) throw new EnsembleError(`weights '${key}': the manifest gives no local source file for it`, 'internal');
    const cacheKey = `${key}\0${sha256.toLowerCase()}`;
    let check = this.verified.get(cacheKey);
    if (!check) {
      check = this.check(source, sha256.toLowerCase());
      this.verified.set(cacheKey, check);
      check.catch(() => this.verified.delete(cacheKey));
    }
    return check;
  }

  async head(key: string): Promise<{ exists: boolean; sha256?: string; size?: number }> {
    const source = this.sources.get(key);
    if (!source) return { exists: false };
    try {
      const info = await stat(source);
      return { exists: true, sha256: await sha256File(source), size: info.size };
    } catch {
      return { exists: false };
    }
  }

  private async check(source: string, expected: string): Promise<string> {
    let actual: string;
    try {
      actual = await sha256File(source);
    } catch (e) {
      throw new EnsembleError(`weights file ${source}: ${(e as Error).message}`, 'internal');
    }
    if (actual !== expected) {
      throw new EnsembleError(`weights file ${source} has sha256 ${actual}, the manifest pins ${expected} (rebuild it, or update the manifest)`, 'internal');
    }
    return source;
  }
}
