/**
 * Executors over real pipelines for tests: a manifest written to a temp
 * folder (YAML, generated ONNX models, function-stage modules), its weights
 * pushed to s3rver, verified, and loaded through InProcessTransport with a
 * real S3WeightStore.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Executor } from '../../src/executor/executor.js';
import { loadManifest } from '../../src/manifest/load.js';
import { verifyManifest } from '../../src/manifest/verify.js';
import type { Manifest } from '../../src/manifest/types.js';
import { pushPipeline } from '@ensemble/tools/pipelines/push.js';
import { ensureBucket } from '@ensemble/tools/local/bucket.js';
import { S3WeightStore } from '../../src/storage/s3-weights.js';
import { InProcessTransport } from '../../src/transport/in-process.js';
import { sha256Hex } from '../fixtures/models.js';
import { startLocal, type Local } from '../storage/local.js';

export interface Harness {
  local: Local;
  weights: S3WeightStore;
  /** Writes a pipeline folder and returns a loaded executor over it. */
  load(yaml: string, files?: Record<string, string | Uint8Array>): Promise<Loaded>;
  /** Closes every executor loaded, stops the emulators, removes the temp folders. */
  close(): Promise<void>;
}

export interface Loaded {
  executor: Executor;
  manifest: Manifest;
  dir: string;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'ensemble-executor-'));
  const local = await startLocal(join(root, 'data'));
  await ensureBucket(local.s3, local.settings.bucket);
  const weights = new S3WeightStore({ s3: local.s3, bucket: local.settings.bucket, cacheDir: join(root, 'cache') });
  const open: Loaded[] = [];
  let n = 0;
  return {
    local,
    weights,
    async load(yaml, files = {}) {
      const dir = join(root, `p${n++}`);
      for (const [name, content] of Object.entries(files)) {
        await mkdir(dirname(join(dir, name)), { recursive: true });
        await writeFile(join(dir, name), content);
      }
      await writeFile(join(dir, 'pipeline.yaml'), yaml);
      const manifest = await loadManifest(join(dir, 'pipeline.yaml'));
      await pushPipeline(manifest, { s3: local.s3, bucket: local.settings.bucket });
      await verifyManifest(manifest, weights);
      const transport = new InProcessTransport(weights);
      const executor = await Executor.create(manifest, transport);
      let closing: Promise<void> | undefined;
      const loaded: Loaded = {
        executor, manifest, dir,
        close() {
          closing ??= executor.close().then(() => transport.close());
          return closing;
        },
      };
      open.push(loaded);
      return loaded;
    },
    async close() {
      for (const l of open) await l.close();
      await local.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** YAML for an onnx stage's weights block, pinned to `bytes`. */
export function weightsYaml(key: string, file: string, bytes: Uint8Array): string {
  return `{ key: ${key}, sha256: ${sha256Hex(bytes)}, source: ${file} }`;
}

/**
 * Function-stage modules record what happened into this global list, so a
 * test can see when stages started and ended without any hook in the engine.
 */
export interface ProbeEvent {
  stage: string;
  what: 'start' | 'end';
  t: number;
  /** Free-form detail the module adds (an item's id). */
  detail?: string;
}

const g = globalThis as { __ensembleProbe?: ProbeEvent[] };

export function probeEvents(): ProbeEvent[] {
  return (g.__ensembleProbe ??= []);
}

export function resetProbe(): void {
  g.__ensembleProbe = [];
}

/**
 * Source of a function-stage module: records start/end into the probe, and
 * runs `body` (TypeScript statements over `item`, `ctx`, `sleep`, `f32`) which must
 * return the stage's result. No imports, so it loads from any folder.
 */
export function probeModule(body: string): string {
  return `
const g = globalThis as { __ensembleProbe?: { stage: string; what: string; t: number; detail?: string }[] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f32 = (values: number[], shape = [values.length]) => ({ datatype: 'FP32', shape, data: Float32Array.from(values) });
export default {
  async process(item: any, ctx: any) {
    const log = (g.__ensembleProbe ??= []);
    const detail = item.x ? Array.from(item.x.data as ArrayLike<number>).join(',') : undefined;
    log.push({ stage: ctx.stage, what: 'start', t: performance.now(), detail });
    try {
      ${body}
    } finally {
      log.push({ stage: ctx.stage, what: 'end', t: performance.now(), detail });
    }
  },
};
`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `cond` holds (polling), or fail after `ms`. */
export async function until(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
