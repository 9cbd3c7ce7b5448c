import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findManifests, loadManifest } from '@ensemble/core/manifest/load.js';
import { buildIfNeeded } from '../pipelines/build.js';
import { pushPipeline } from '../pipelines/push.js';
import { startServer, type RunningServer, type ServerOptions } from '../serve/server.js';
import { makeS3Client, settingsFromEnv } from '@ensemble/core/storage/index.js';
import { ensureBucket } from '../local/bucket.js';
import { EnsembleError } from '@ensemble/core/errors.js';

const ENTRY = fileURLToPath(new URL('./services-child-entry.mjs', import.meta.url));

export interface BenchServerOptions {
  modelsDir: string;
  pipelines: string[];
  dataDir: string;
  /** s3rver, dynalite and fauxqs in a child process (default) or in the gateway's process (as `ensemble serve` runs them). */
  servicesInChild?: boolean;
  /**
   * With the services in a child: make each pipeline's job queues there and
   * poll them in the gateway, as `ensemble serve` does in local mode (a
   * server given endpoints treats them as remote and leaves queues alone).
   */
  consumeJobs?: boolean;
  transport?: ServerOptions['transport'];
  log?: (s: string) => void;
}

/**
 * The real server (startServer) for a benchmark. By default the S3,
 * DynamoDB and SQS emulators run in a process of their own and the gateway reaches
 * them over HTTP with the real SDK, as it reaches AWS: the SDK's work (and
 * the records it writes) stays in the gateway, the emulators' does not.
 */
export async function startBenchServer(o: BenchServerOptions): Promise<RunningServer> {
  const log = o.log ?? (() => undefined);
  if (o.servicesInChild === false) {
    return startServer({ port: 0, dataDir: o.dataDir, modelsDir: o.modelsDir, pipelines: o.pipelines, log, transport: o.transport });
  }
  const child = fork(ENTRY, [join(o.dataDir, 'services')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const stopChild = () => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    if (child.connected) child.send({ type: 'close' }); else child.kill('SIGTERM');
  });
  try {
    const ready = await new Promise<{ s3Endpoint: string; dynamoEndpoint: string; sqsEndpoint: string }>((resolve, reject) => {
      child.once('message', (m: { type: string; s3Endpoint: string; dynamoEndpoint: string; sqsEndpoint: string }) => resolve(m));
      child.once('error', reject);
      child.once('exit', (code) => reject(new EnsembleError(`local services child exited (code ${code}) before it was ready`)));
    });
    const env: Record<string, string | undefined> = {
      ...process.env,
      ENSEMBLE_S3_ENDPOINT: ready.s3Endpoint,
      ENSEMBLE_DYNAMODB_ENDPOINT: ready.dynamoEndpoint,
      ENSEMBLE_SQS_ENDPOINT: ready.sqsEndpoint,
      ENSEMBLE_CREATE_RESOURCES: '1',
      ENSEMBLE_USE_AWS: undefined,
      AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SESSION_TOKEN: undefined,
    };
    // With endpoints given, startServer treats the services as remote and does not push: push here, as a deploy would.
    const settings = settingsFromEnv(env);
    const s3 = makeS3Client(settings);
    try {
      await ensureBucket(s3, settings.bucket);
      for (const file of await findManifests(o.modelsDir)) {
        const m = await loadManifest(file);
        if (!o.pipelines.includes(m.name)) continue;
        await buildIfNeeded(m, log);
        await pushPipeline(m, { s3, bucket: settings.bucket, log });
      }
    } finally {
      s3.destroy();
    }
    const server = await startServer({ port: 0, dataDir: o.dataDir, modelsDir: o.modelsDir, pipelines: o.pipelines, log, env, transport: o.transport });
    if (o.consumeJobs) {
      try {
        for (const m of server.manifests) {
          server.jobs.queues.setMaxReceives(m.name, m.jobs?.maxReceives);
          await server.jobs.queues.ensure(m.name);
        }
        server.jobs.consume(server.manifests);
      } catch (e) {
        await server.close();
        throw e;
      }
    }
    return {
      ...server,
      async close() {
        try { await server.close(); } finally { await stopChild(); }
      },
    };
  } catch (e) {
    await stopChild();
    throw e;
  }
}
