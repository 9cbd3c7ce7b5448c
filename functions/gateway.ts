/**
 * Lambda entry point of the gateway: the same Hono app as `ensemble serve`,
 * built once per instance during init. ENSEMBLE_TRANSPORT=local runs the ONNX
 * stages in this process instead of invoking their functions (tests, no AWS).
 */
import { createLambdaGateway, type TransportContext } from '@ensemble/core/lambda/gateway.js';
import path from 'node:path';
import { CONSOLE_STATIC, DEFAULT_CACHE_DIR, ENV } from '@ensemble/core/lambda/environment.js';
import type { StageTransport } from '@ensemble/core/transport/types.js';
import { consoleMounts } from '@ensemble/console';

const gateway = await createLambdaGateway({
  transport: process.env[ENV.transport] === 'local' ? localTransport : undefined,
  // The console's page and scripts ship beside the bundle (the deployment plan copies them); its API sits behind the key.
  mounts: ({ registry, visible }) => consoleMounts({ registry, visible, staticDir: consoleStatic() }),
});

export const handler = gateway.handler;

/** Bundled, the console's files are where the plan copied them under the task root; from source, its package's own. */
function consoleStatic(): string | undefined {
  const root = process.env.LAMBDA_TASK_ROOT;
  return root ? path.join(root, CONSOLE_STATIC) : undefined;
}

async function localTransport({ env, settings, s3 }: TransportContext): Promise<StageTransport> {
  // Imported by URL so the Lambda bundle does not follow it into onnxruntime-node.
  const url = new URL('../packages/core/src/transport/in-process.ts', import.meta.url).href;
  const { InProcessTransport } = (await import(/* @vite-ignore */ url)) as typeof import('@ensemble/core/transport/in-process.js');
  const { S3WeightStore } = await import('@ensemble/core/storage/s3-weights.js');
  return new InProcessTransport(new S3WeightStore({ s3, bucket: settings.bucket, cacheDir: env[ENV.cacheDir] || DEFAULT_CACHE_DIR }));
}
