import { resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoRunStore, JournaledRunStore, S3WeightStore, ensureRunsTable, makeDynamoClient, makeS3Client, settingsFromEnv, type AwsSettings,
} from '@ensemble/core/storage/index.js';
import { DEFAULT_JOBS_TABLE, LOCAL_CREDENTIALS } from '@ensemble/core/storage/config.js';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { makeSqsClient } from '@ensemble/core/jobs/queue.js';
import { ensureJobsTable } from '@ensemble/core/jobs/store.js';
import { acquireDataLock, dataFolderHolder, type DataLock, type DataLockInfo } from './data-lock.js';
import { startLocalServices, withLocalServices, type LocalServices } from '../local/local-services.js';
import { ensureBucket } from '../local/bucket.js';

export interface EnvironmentOptions {
  /** Local data folder: emulator data under it, weights cache in `<dataDir>/cache`. */
  dataDir: string;
  env?: Record<string, string | undefined>;
  /** Bounds of the run record journal (`<dataDir>/runs-journal`); the defaults suit a server. */
  journal?: { highWater?: number; lowWater?: number };
  /**
   * When a server already holds the data folder, talk to its emulators
   * instead of refusing (the CLI's push and runs); a server itself refuses.
   */
  shareRunningServer?: boolean;
}

/** Where weights and runs live for this process, and the clients to reach them. */
export interface Environment {
  settings: AwsSettings;
  /** 'local' when this process started s3rver + dynalite, else 'aws' (or a given endpoint). */
  mode: 'local' | 'remote';
  /** Local mode: the data folder's lock, for the server to record its URL in. */
  lock?: DataLock;
  /** The running server whose emulators this process uses (shareRunningServer). */
  sharedWith?: DataLockInfo;
  s3: S3Client;
  dynamo: DynamoDBClient;
  /** Job queues: the local emulator's, or the region's SQS. */
  sqs: SQSClient;
  weights: S3WeightStore;
  /** Run records: journaled in the data folder, then written to DynamoDB. */
  runs: JournaledRunStore;
  close(): Promise<void>;
}

/** Whether openEnvironment starts the emulators under the data folder (no endpoint or AWS asked for). */
export function usesLocalEmulators(env: Record<string, string | undefined> = process.env): boolean {
  const settings = settingsFromEnv(env);
  return !(env.ENSEMBLE_USE_AWS === '1' || settings.s3Endpoint !== undefined || settings.dynamoEndpoint !== undefined);
}

/**
 * Local mode unless told otherwise: with no ENSEMBLE_S3_ENDPOINT /
 * ENSEMBLE_DYNAMODB_ENDPOINT and no ENSEMBLE_USE_AWS=1, start s3rver and
 * dynalite in-process under the data folder. Either way the real AWS SDK
 * clients do the talking, so the code path is the same as on AWS.
 */
export async function openEnvironment(opts: EnvironmentOptions): Promise<Environment> {
  const env = opts.env ?? process.env;
  const dataDir = resolve(opts.dataDir);
  let settings = settingsFromEnv(env);
  let services: LocalServices | undefined;
  const remote = !usesLocalEmulators(env);
  let lock: DataLock | undefined;
  let sharedWith: DataLockInfo | undefined;
  if (!remote && opts.shareRunningServer) {
    const holder = await dataFolderHolder(dataDir);
    if (holder?.s3Endpoint && holder.dynamoEndpoint) {
      sharedWith = holder;
      settings = { ...settings, s3Endpoint: holder.s3Endpoint, dynamoEndpoint: holder.dynamoEndpoint, credentials: settings.credentials ?? { ...LOCAL_CREDENTIALS } };
      if (holder.sqsEndpoint) settings.sqsEndpoint = holder.sqsEndpoint;
    }
  }
  if (!remote && !sharedWith) {
    // Before the emulators: a second process on the folder is refused here, not inside dynalite.
    lock = await acquireDataLock(dataDir);
    try {
      services = await startLocalServices({ dataDir });
      await lock.update({ s3Endpoint: services.s3Endpoint, dynamoEndpoint: services.dynamoEndpoint, sqsEndpoint: services.sqsEndpoint });
    } catch (e) {
      await services?.close().catch(() => undefined);
      await lock.release();
      throw e;
    }
    settings = withLocalServices(settings, services);
  }
  const s3 = makeS3Client(settings);
  const dynamo = makeDynamoClient(settings);
  const sqs = makeSqsClient(settings);
  if (services || env.ENSEMBLE_CREATE_RESOURCES === '1') {
    try {
      // On AWS the stacks own the bucket and table; locally we make them.
      await ensureBucket(s3, settings.bucket);
      await ensureRunsTable(dynamo, settings.runsTable);
      await ensureJobsTable(dynamo, settings.jobsTable ?? DEFAULT_JOBS_TABLE);
    } catch (e) {
      s3.destroy();
      dynamo.destroy();
      sqs.destroy();
      await services?.close().catch(() => undefined);
      await lock?.release();
      throw e;
    }
  }
  const weights = new S3WeightStore({ s3, bucket: settings.bucket, cacheDir: resolve(dataDir, 'cache') });
  const log = (s: string) => console.error(`[ensemble] ${s}`);
  const table = new DynamoRunStore({
    dynamo, table: settings.runsTable,
    // A long-running server: let a trickle of records share BatchWriteItem calls. Readers do not wait for it
    // (the journal answers for records not yet in the table), and each call's fixed cost (signing, HTTP, the
    // wakeups of a request on loopback) was a third of a tiny request's CPU at c=1 with 20 ms: 250 ms took
    // it from 2.34 to 1.92 ms per request (docs/benchmarks.md, the eleventh pass).
    lingerMs: 250,
    // The store's messages say what happens to the record (retried, refused): no prefix that could contradict them.
    onError: (e) => log(`run store: ${e instanceof Error ? e.message : String(e)}`),
  });
  const runs = await JournaledRunStore.open({ dir: resolve(dataDir, 'runs-journal'), sink: table, log, ...opts.journal });
  return {
    settings, mode: services ? 'local' : 'remote', s3, dynamo, sqs, weights, runs, lock, sharedWith,
    async close() {
      try {
        await runs.close();
        s3.destroy();
        dynamo.destroy();
        sqs.destroy();
        await services?.close();
      } finally {
        await lock?.release();
      }
    },
  };
}
