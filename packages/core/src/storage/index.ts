export type { RunRecord, RunStatus, RunStore, StageRunRecord, WeightStore } from './types.js';
export {
  DEFAULT_BUCKET,
  DEFAULT_REGION,
  DEFAULT_RUNS_TABLE,
  LOCAL_CREDENTIALS,
  makeDynamoClient,
  makeS3Client,
  settingsFromEnv,
  type AwsCredentials,
  type AwsSettings,
} from './config.js';
export { S3WeightStore, SHA256_METADATA, type S3WeightStoreOptions } from './s3-weights.js';
export { DynamoRunStore, type DynamoRunStoreOptions, type WriteOutcome } from './dynamo-runs.js';
export { JournaledRunStore, type JournaledRunStoreOptions } from './journal.js';
export { fitRecord, RECORD_MAX_BYTES } from './record-limits.js';
export { isRunId } from './run-id.js';
export { RUNS_TABLE_KEYS, ensureRunsTable, runsTableDefinition, type EnsureTableOptions } from './runs-table.js';
export { isSha256, sha256File } from './hash.js';
