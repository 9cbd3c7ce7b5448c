import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { makeDynamoClient, makeS3Client, settingsFromEnv, type AwsSettings } from '../../src/storage/config.js';
import { startLocalServices, withLocalServices, type LocalServices } from '@ensemble/tools/local/local-services.js';

/** A temp folder, removed by cleanup(). */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `ensemble-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Local {
  services: LocalServices;
  settings: AwsSettings;
  s3: ReturnType<typeof makeS3Client>;
  dynamo: ReturnType<typeof makeDynamoClient>;
  /** Destroys the clients, then stops the emulators. */
  close(): Promise<void>;
}

/** Emulators on free ports under dataDir, with real SDK clients pointed at them. */
export async function startLocal(dataDir: string, ports: { s3Port?: number; dynamoPort?: number } = {}): Promise<Local> {
  const services = await startLocalServices({ dataDir, ...ports });
  const settings = withLocalServices(settingsFromEnv({}, { bucket: 'weights', runsTable: 'runs' }), services);
  const s3 = makeS3Client(settings);
  const dynamo = makeDynamoClient(settings);
  return {
    services,
    settings,
    s3,
    dynamo,
    async close() {
      s3.destroy();
      dynamo.destroy();
      await services.close();
    },
  };
}

/** Counts the commands a client sends, by command name, through the SDK's own middleware stack. */
export function countCommands(client: S3Client): Map<string, number> {
  const counts = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName);
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'countCommands' },
  );
  return counts;
}

export const port = (endpoint: string): number => Number(new URL(endpoint).port);
