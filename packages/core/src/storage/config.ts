import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Where weights and run records live: real AWS, or emulators when endpoints are set. */
export interface AwsSettings {
  region: string;
  s3Endpoint?: string;
  dynamoEndpoint?: string;
  bucket: string;
  runsTable: string;
  /** Batch jobs: their state, per-item outcomes and counters (jobs/store.ts). */
  jobsTable?: string;
  /** An SQS emulator's endpoint (local mode); unset: the region's SQS. */
  sqsEndpoint?: string;
  /** Job queues are named `<prefix><pipeline>` and `<prefix><pipeline>-dlq`. */
  jobsQueuePrefix?: string;
  /** Unset means the SDK's default provider chain (Lambda role, profile, ...). */
  credentials?: AwsCredentials;
}

export const DEFAULT_BUCKET = 'ensemble-weights';
export const DEFAULT_RUNS_TABLE = 'ensemble-runs';
export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_JOBS_TABLE = 'ensemble-jobs';
export const DEFAULT_JOBS_QUEUE_PREFIX = 'ensemble-jobs-';

/**
 * The keys s3rver knows (it rejects any other access key id); dynalite accepts
 * anything. Used when an endpoint is set and the environment has no keys, so
 * local mode needs no AWS account.
 */
export const LOCAL_CREDENTIALS: AwsCredentials = Object.freeze({
  accessKeyId: 'S3RVER',
  secretAccessKey: 'S3RVER',
});

/** A process environment, or a part of one (tests pass their own). */
export type Env = Record<string, string | undefined>;

/** Environment wins over `defaults`; `defaults` win over the built-in names. */
export function settingsFromEnv(env: Env = process.env, defaults: Partial<AwsSettings> = {}): AwsSettings {
  const pick = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const s3Endpoint = pick('ENSEMBLE_S3_ENDPOINT') ?? defaults.s3Endpoint;
  const dynamoEndpoint = pick('ENSEMBLE_DYNAMODB_ENDPOINT') ?? defaults.dynamoEndpoint;
  const sqsEndpoint = pick('ENSEMBLE_SQS_ENDPOINT') ?? defaults.sqsEndpoint;

  let credentials: AwsCredentials | undefined;
  const accessKeyId = pick('AWS_ACCESS_KEY_ID');
  const secretAccessKey = pick('AWS_SECRET_ACCESS_KEY');
  if (accessKeyId && secretAccessKey) {
    const sessionToken = pick('AWS_SESSION_TOKEN');
    credentials = sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
  } else if (defaults.credentials) {
    credentials = defaults.credentials;
  } else if (s3Endpoint || dynamoEndpoint || sqsEndpoint) {
    credentials = { ...LOCAL_CREDENTIALS };
  }

  const settings: AwsSettings = {
    region: pick('AWS_REGION') ?? pick('AWS_DEFAULT_REGION') ?? defaults.region ?? DEFAULT_REGION,
    bucket: pick('ENSEMBLE_BUCKET') ?? defaults.bucket ?? DEFAULT_BUCKET,
    runsTable: pick('ENSEMBLE_RUNS_TABLE') ?? defaults.runsTable ?? DEFAULT_RUNS_TABLE,
  };
  // Unset means the built-in names (DEFAULT_JOBS_TABLE, DEFAULT_JOBS_QUEUE_PREFIX), applied where they are used.
  const jobsTable = pick('ENSEMBLE_JOBS_TABLE') ?? defaults.jobsTable;
  const jobsQueuePrefix = pick('ENSEMBLE_JOBS_QUEUE_PREFIX') ?? defaults.jobsQueuePrefix;
  if (jobsTable) settings.jobsTable = jobsTable;
  if (jobsQueuePrefix) settings.jobsQueuePrefix = jobsQueuePrefix;
  if (sqsEndpoint) settings.sqsEndpoint = sqsEndpoint;
  if (s3Endpoint) settings.s3Endpoint = s3Endpoint;
  if (dynamoEndpoint) settings.dynamoEndpoint = dynamoEndpoint;
  if (credentials) settings.credentials = credentials;
  return settings;
}

export function makeS3Client(s: AwsSettings): S3Client {
  if (!s.s3Endpoint) return new S3Client({ region: s.region, credentials: s.credentials });
  return new S3Client({
    region: s.region,
    endpoint: s.s3Endpoint,
    // Emulators serve buckets by path, not by virtual host.
    forcePathStyle: true,
    credentials: s.credentials ?? LOCAL_CREDENTIALS,
    // The SDK's default CRC32 trailers use aws-chunked bodies, which s3rver
    // stores verbatim (corrupting the object); checksum only where S3 demands it.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * The SDK's logger middleware calls `logger?.info?.(filter(input), filter(output))`:
 * with its default no-op logger the sensitive-data filter still walks every
 * item written (a tenth of the gateway's CPU under load, measured). A logger
 * without `info` skips it; warnings and errors still have somewhere to go.
 */
const QUIET_LOGGER = { debug() {}, warn() {}, error() {} } as unknown as DynamoDBClientConfig['logger'];

export function makeDynamoClient(s: AwsSettings): DynamoDBClient {
  if (!s.dynamoEndpoint) return new DynamoDBClient({ region: s.region, credentials: s.credentials, logger: QUIET_LOGGER });
  return new DynamoDBClient({
    region: s.region,
    endpoint: s.dynamoEndpoint,
    credentials: s.credentials ?? LOCAL_CREDENTIALS,
    logger: QUIET_LOGGER,
  });
}
