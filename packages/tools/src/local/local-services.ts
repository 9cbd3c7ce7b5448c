import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import S3rver from 's3rver';
import dynalite from 'dynalite';
import { startFauxqs, type FauxqsServer } from 'fauxqs';
import { keepS3rverFolders } from './s3rver-fix.js';
import { LOCAL_CREDENTIALS, type AwsCredentials, type AwsSettings } from '@ensemble/core/storage/config.js';

export interface LocalServicesOptions {
  /** Both emulators keep their data under this folder (`s3/`, `dynamo/`), so it survives a restart. */
  dataDir: string;
  host?: string;
  /** 0 (the default) picks a free port. */
  s3Port?: number;
  dynamoPort?: number;
  sqsPort?: number;
}

export interface LocalServices {
  s3Endpoint: string;
  dynamoEndpoint: string;
  /**
   * fauxqs, an SQS emulator speaking the JSON protocol current SDK clients
   * send. It keeps queues in memory only: a restart starts with none, and
   * the server queues unfinished jobs' items again (jobs/resume.ts).
   */
  sqsEndpoint: string;
  /** Credentials the emulators accept (s3rver knows only these). */
  credentials: AwsCredentials;
  close(): Promise<void>;
}

/** s3rver, dynalite and fauxqs in this process, over real HTTP, so the real AWS SDK talks to them. */
export async function startLocalServices(opts: LocalServicesOptions): Promise<LocalServices> {
  const host = opts.host ?? '127.0.0.1';
  const s3Dir = join(opts.dataDir, 's3');
  const dynamoDir = join(opts.dataDir, 'dynamo');
  await mkdir(s3Dir, { recursive: true });
  await mkdir(dynamoDir, { recursive: true });

  keepS3rverFolders();
  const s3 = new S3rver({ address: host, port: opts.s3Port ?? 0, directory: s3Dir, silent: true });
  const s3Address = await s3.run();

  let dynamo: Server;
  let dynamoAddress: AddressInfo;
  try {
    dynamo = dynalite({ path: dynamoDir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    dynamoAddress = await listen(dynamo, opts.dynamoPort ?? 0, host);
  } catch (e) {
    await s3.close();
    throw e;
  }

  let sqs: FauxqsServer;
  try {
    sqs = await startFauxqs({ port: opts.sqsPort ?? 0, host, logger: false });
  } catch (e) {
    await Promise.allSettled([s3.close(), closeServer(dynamo)]);
    throw e;
  }

  let closing: Promise<void> | undefined;
  return {
    s3Endpoint: endpoint(host, s3Address.port),
    dynamoEndpoint: endpoint(host, dynamoAddress.port),
    sqsEndpoint: endpoint(host, sqs.port),
    credentials: { ...LOCAL_CREDENTIALS },
    close() {
      // Every server must finish closing (dynalite releases its LevelDB lock) even if one fails.
      closing ??= Promise.allSettled([s3.close(), closeServer(dynamo), sqs.stop()]).then((results) => {
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      });
      return closing;
    },
  };
}

/** `base` pointed at running local services, with the credentials they accept. */
export function withLocalServices(base: AwsSettings, services: Pick<LocalServices, 's3Endpoint' | 'dynamoEndpoint' | 'credentials'> & { sqsEndpoint?: string }): AwsSettings {
  const s: AwsSettings = { ...base, s3Endpoint: services.s3Endpoint, dynamoEndpoint: services.dynamoEndpoint, credentials: services.credentials };
  if (services.sqsEndpoint) s.sqsEndpoint = services.sqsEndpoint;
  return s;
}

function endpoint(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    // Keep-alive sockets from SDK clients would otherwise hold close() open until they time out.
    server.closeIdleConnections();
  });
}
