/**
 * Measures what 1,000 OCR requests would cost on Lambda, for docs/deploy.md:
 * runs the OCR pipeline through the deployed gateway code with LambdaTransport
 * against the local Lambda host (the stage functions as planDeployment sizes
 * them), then prices the measured billed durations per function.
 *
 *   npx tsx packages/tools/src/bench/measure-cost.ts [requests per page, default 3]
 *
 * Warm requests only: the first pass over the pages starts the environments
 * and is left out; cold starts (Init Duration, billed since August 2025) are
 * reported on their own line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import { pushPipeline } from '../pipelines/push.js';
import { startLocalServices, withLocalServices } from '../local/local-services.js';
import { makeDynamoClient, makeS3Client, settingsFromEnv } from '@ensemble/core/storage/config.js';
import { ensureBucket } from '../local/bucket.js';
import { ensureRunsTable } from '@ensemble/core/storage/runs-table.js';
import { LambdaHost } from '../lambda-host/host.js';
import { componentNames, gatewayStageEnvironment, hostedStageFunctions, storageEnvironment } from '../lambda-host/from-plan.js';
import { ocrSamples } from './ocr-images.js';
import { planDeployment } from '../deploy/plan.js';
import { createLambdaGateway } from '@ensemble/core/lambda/gateway.js';
import { billedMs, costMarkdown, costPer1000Requests, LAMBDA_PRICES_X86_US_EAST_1, type FunctionUsage } from '../deploy/cost.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3);
  const dir = await mkdtemp(path.join(tmpdir(), 'ensemble-cost-'));
  const services = await startLocalServices({ dataDir: path.join(dir, 'data') });
  const settings = withLocalServices(settingsFromEnv({}, { bucket: 'weights', runsTable: 'runs' }), services);
  const s3 = makeS3Client(settings);
  const dynamo = makeDynamoClient(settings);
  let host: LambdaHost | undefined;
  try {
    await ensureBucket(s3, settings.bucket);
    await ensureRunsTable(dynamo, settings.runsTable);
    const ocr = await loadManifest(path.join(ROOT, 'models/ocr/pipeline.yaml'));
    await pushPipeline(ocr, { s3, bucket: settings.bucket });
    const plan = planDeployment([ocr], { root: ROOT });
    host = await LambdaHost.start({
      functions: hostedStageFunctions(plan, { planRoot: ROOT, names: componentNames(settings) }),
      environment: storageEnvironment(settings),
      tmpDir: path.join(dir, 'lambda'),
      log: () => undefined,
    });
    const gateway = await createLambdaGateway({
      env: {
        ...storageEnvironment(settings), ...gatewayStageEnvironment(plan),
        LAMBDA_TASK_ROOT: ROOT, ENSEMBLE_MANIFESTS: 'models/ocr/pipeline.yaml', ENSEMBLE_LAMBDA_ENDPOINT: host.url,
        ENSEMBLE_BUCKET: settings.bucket, ENSEMBLE_RUNS_TABLE: settings.runsTable, ENSEMBLE_API_KEY: 'cost',
      },
      log: () => undefined,
    });

    const pages = await ocrSamples();
    const send = async (png: Buffer): Promise<number> => {
      const t0 = performance.now();
      const res = await gateway.handler({
        version: '2.0', routeKey: '$default', rawPath: '/v2/models/ocr/infer', rawQueryString: '',
        headers: { 'content-type': 'image/png', 'x-api-key': 'cost' },
        requestContext: { http: { method: 'POST', path: '/v2/models/ocr/infer', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'cost' } },
        body: png.toString('base64'), isBase64Encoded: true,
      } as never);
      if (res.statusCode !== 200) throw new Error(`OCR answered ${res.statusCode}: ${res.body}`);
      return performance.now() - t0;
    };
    // Warm-up: one pass starts every environment (cold starts measured here, priced apart).
    for (const p of pages) await send(p.png);
    const warmFrom = host.reports().length;
    const gatewayMs: number[] = [];
    for (let r = 0; r < rounds; r++) for (const p of pages) gatewayMs.push(await send(p.png));
    const requests = gatewayMs.length;

    const usage: FunctionUsage[] = [{
      function: `${plan.gateway.name} (waits for its stages)`,
      memoryMb: plan.gateway.memoryMb,
      invocationsPerRequest: 1,
      billedMsPerInvocation: gatewayMs.reduce((s, ms) => s + billedMs(ms), 0) / requests,
    }];
    const warm = host.reports().slice(warmFrom);
    for (const s of plan.stages) {
      const mine = warm.filter((r) => r.function === s.name && r.outcome === 'ok');
      usage.push({
        function: s.name,
        memoryMb: s.memoryMb,
        invocationsPerRequest: mine.length / requests,
        billedMsPerInvocation: mine.reduce((sum, r) => sum + r.billedMs, 0) / Math.max(1, mine.length),
      });
    }
    const table = costPer1000Requests(usage, LAMBDA_PRICES_X86_US_EAST_1);
    const cold = host.reports().filter((r) => r.coldStart && r.initMs !== undefined);
    console.log(`measured ${requests} warm OCR requests (${pages.length} pages x ${rounds}) on ${cpus().length} x ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}\n`);
    console.log(costMarkdown(table));
    console.log(`\ncold starts: ${cold.map((r) => `${r.function} init ${Math.round(r.initMs!)} ms`).join(', ')}`);
    await gateway.close();
  } finally {
    await host?.close();
    s3.destroy();
    dynamo.destroy();
    await services.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
