import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { EnsembleError } from '../errors.js';

/** Key and index names of the runs table; infrastructure code builds the same table from these. */
export const RUNS_TABLE_KEYS = {
  partitionKey: 'id',
  index: { name: 'byPipeline', partitionKey: 'pipeline', sortKey: 'startedAt' },
  ttl: 'expiresAt',
} as const;

export function runsTableDefinition(table: string): CreateTableCommandInput {
  const k = RUNS_TABLE_KEYS;
  return {
    TableName: table,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: k.partitionKey, AttributeType: 'S' },
      { AttributeName: k.index.partitionKey, AttributeType: 'S' },
      { AttributeName: k.index.sortKey, AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: k.partitionKey, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [
      {
        IndexName: k.index.name,
        KeySchema: [
          { AttributeName: k.index.partitionKey, KeyType: 'HASH' },
          { AttributeName: k.index.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}

export interface EnsureTableOptions {
  /** How long to wait for the table to become ACTIVE. */
  timeoutMs?: number;
  pollMs?: number;
}

/** Create the runs table (on-demand billing, TTL on) unless it exists, and wait until it and its index are ACTIVE. */
export async function ensureRunsTable(dynamo: DynamoDBClient, table: string, opts: EnsureTableOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 5 * 60_000;
  const pollMs = opts.pollMs ?? 250;

  if (!(await describe(dynamo, table))) {
    try {
      await dynamo.send(new CreateTableCommand(runsTableDefinition(table)));
    } catch (e) {
      if ((e as { name?: string }).name !== 'ResourceInUseException') throw e;
    }
  }

  // Our own poll rather than waitUntilTableExists: its 20 s minimum delay would stall every local start.
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const desc = await describe(dynamo, table);
    if (desc && isActive(desc)) break;
    if (Date.now() > deadline) {
      throw new EnsembleError(`DynamoDB table ${table} did not become ACTIVE within ${Math.round(timeoutMs / 1000)} s`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }

  await enableTtl(dynamo, table);
}

async function describe(dynamo: DynamoDBClient, table: string): Promise<TableDescription | undefined> {
  try {
    return (await dynamo.send(new DescribeTableCommand({ TableName: table }))).Table;
  } catch (e) {
    if ((e as { name?: string }).name === 'ResourceNotFoundException') return undefined;
    throw e;
  }
}

function isActive(desc: TableDescription): boolean {
  if (desc.TableStatus !== 'ACTIVE') return false;
  return (desc.GlobalSecondaryIndexes ?? []).every((i) => i.IndexStatus === undefined || i.IndexStatus === 'ACTIVE');
}

async function enableTtl(dynamo: DynamoDBClient, table: string): Promise<void> {
  try {
    const out = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: table }));
    const status = out.TimeToLiveDescription?.TimeToLiveStatus;
    if (status === 'ENABLED' || status === 'ENABLING') return;
    await dynamo.send(
      new UpdateTimeToLiveCommand({
        TableName: table,
        TimeToLiveSpecification: { AttributeName: RUNS_TABLE_KEYS.ttl, Enabled: true },
      }),
    );
  } catch (e) {
    // dynalite has no TTL support; expired records then just stay, which is harmless locally.
    if ((e as { name?: string }).name === 'UnknownOperationException') return;
    throw e;
  }
}
