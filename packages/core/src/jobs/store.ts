import {
  BatchGetItemCommand, ConditionalCheckFailedException, CreateTableCommand, DescribeTableCommand, GetItemCommand, PutItemCommand, QueryCommand, ScanCommand,
  UpdateItemCommand, type AttributeValue, type BatchGetItemCommandOutput, type KeysAndAttributes, type CreateTableCommandInput, type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { EnsembleError } from '../errors.js';
import type { JobRecord, ResultLine, StoredJobState } from './types.js';

/** Key names of the jobs table; the stacks build the same table from these. */
export const JOBS_TABLE_KEYS = { partitionKey: 'pk', sortKey: 'sk' } as const;

export function jobsTableDefinition(table: string): CreateTableCommandInput {
  return {
    TableName: table,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
  };
}

export async function ensureJobsTable(dynamo: DynamoDBClient, table: string): Promise<void> {
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: table }));
    return;
  } catch (e) {
    if ((e as { name?: string }).name !== 'ResourceNotFoundException') throw e;
  }
  try {
    await dynamo.send(new CreateTableCommand(jobsTableDefinition(table)));
  } catch (e) {
    if ((e as { name?: string }).name !== 'ResourceInUseException') throw e;
  }
  for (let i = 0; i < 200; i++) {
    const t = (await dynamo.send(new DescribeTableCommand({ TableName: table }))).Table;
    if (t?.TableStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new EnsembleError(`DynamoDB table ${table} did not become ACTIVE`);
}

/** Where an item stands: taken up (no outcome yet), or its one outcome. */
export type ItemState = 'running' | 'succeeded' | 'failed';

export interface ItemRow {
  key: string;
  state: ItemState;
  line?: ResultLine;
  lastError?: string;
  /** The last failed try's error code, beside its message. */
  lastCode?: string;
}

/** How one consumed batch moves a job's counters. */
export interface CounterDelta {
  /** Items taken up for the first time (they had no row). */
  started: number;
  succeeded: number;
  failed: number;
  /** When the batch was received: the job's startedAt if it is the first. */
  startedAt?: string;
}

export const NO_DELTA: Readonly<CounterDelta> = { started: 0, succeeded: 0, failed: 0 };

/** What a won outcome write adds (its start was counted when its batch took it up). */
export function outcomeDelta(line: ResultLine): CounterDelta {
  const failed = 'error' in line;
  return { started: 0, succeeded: failed ? 0 : 1, failed: failed ? 1 : 0 };
}

/** Two deltas added. */
export function addDelta(a: CounterDelta, b: CounterDelta): CounterDelta {
  return { started: a.started + b.started, succeeded: a.succeeded + b.succeeded, failed: a.failed + b.failed, startedAt: a.startedAt ?? b.startedAt };
}

const META = 'meta';
const itemSk = (key: string) => `item#${key}`;
const pk = (id: string) => `job#${id}`;
const S = (v: string): AttributeValue => ({ S: v });
const N = (v: number): AttributeValue => ({ N: String(v) });

/**
 * Jobs in DynamoDB: one meta item per job (state and counters) and one item
 * per input. An item's outcome is a conditional write (no outcome yet), so a
 * redelivered message never gives it a second; a consumed batch then moves
 * the counters once, by the writes that won.
 */
export class JobStore {
  constructor(private readonly dynamo: DynamoDBClient, private readonly table: string) {}

  async create(job: JobRecord): Promise<void> {
    await this.dynamo.send(new PutItemCommand({
      TableName: this.table,
      Item: toMeta(job),
      ConditionExpression: 'attribute_not_exists(pk)',
    }));
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const out = await this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(pk(id)), sk: S(META) }, ConsistentRead: true }));
    return out.Item ? fromMeta(out.Item) : undefined;
  }

  /** Jobs still active (not finished, not cancelled), or cancelled without their results written: for resuming after a restart. */
  async unfinished(): Promise<JobRecord[]> {
    const jobs: JobRecord[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.dynamo.send(new ScanCommand({
        TableName: this.table, ExclusiveStartKey: start,
        FilterExpression: 'sk = :meta AND (#st = :active OR (#st = :cancelled AND attribute_not_exists(resultsAt)))',
        ExpressionAttributeNames: { '#st': 'state' },
        ExpressionAttributeValues: { ':meta': S(META), ':active': S('active'), ':cancelled': S('cancelled') },
      }));
      jobs.push(...(out.Items ?? []).map(fromMeta));
      start = out.LastEvaluatedKey;
    } while (start);
    return jobs;
  }

  /**
   * The rows that exist among `keys` (items tried before or finished), read
   * in one BatchGetItem per 100 keys: what a consumed batch skips (finished)
   * and what it counts as taken up for the first time (no row).
   */
  async rows(jobId: string, keys: string[]): Promise<Map<string, ItemRow>> {
    const found = new Map<string, ItemRow>();
    for (let i = 0; i < keys.length; i += 100) {
      let request: Record<string, KeysAndAttributes> | undefined = {
        [this.table]: { Keys: [...new Set(keys.slice(i, i + 100))].map((k) => ({ pk: S(pk(jobId)), sk: S(itemSk(k)) })), ConsistentRead: true },
      };
      for (let attempt = 0; request && Object.keys(request).length; attempt++) {
        const out: BatchGetItemCommandOutput = await this.dynamo.send(new BatchGetItemCommand({ RequestItems: request }));
        for (const it of out.Responses?.[this.table] ?? []) { const row = fromItemRow(it); found.set(row.key, row); }
        request = out.UnprocessedKeys;
        if (request && Object.keys(request).length) await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * 2 ** attempt)));
      }
    }
    return found;
  }

  /**
   * Remember why the last try failed, for the outcome written if the item
   * ends in the dead-letter queue; the row (state `running`) is made by the
   * first failed try.
   */
  async noteError(jobId: string, key: string, error: string, code?: string): Promise<void> {
    try {
      await this.dynamo.send(new UpdateItemCommand({
        TableName: this.table, Key: { pk: S(pk(jobId)), sk: S(itemSk(key)) },
        UpdateExpression: `SET lastError = :e, ${code ? 'lastCode = :c, ' : ''}#st = if_not_exists(#st, :running), #k = :key`,
        ConditionExpression: 'attribute_not_exists(sk) OR #st = :running',
        ExpressionAttributeNames: { '#st': 'state', '#k': 'key' },
        ExpressionAttributeValues: {
          ':e': S(error.slice(0, 4_000)), ':running': S('running'), ':key': S(key), ...(code ? { ':c': S(code.slice(0, 100)) } : {}),
        },
      }));
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
    }
  }

  /**
   * Write an item's outcome once: the condition (no outcome yet) is what
   * makes it exactly one, whatever redelivers the message. False when it had
   * one already (nothing changed). Counters are not moved here: see count().
   */
  async writeOutcome(jobId: string, line: ResultLine): Promise<boolean> {
    const state: ItemState = 'error' in line ? 'failed' : 'succeeded';
    try {
      await this.dynamo.send(new UpdateItemCommand({
        TableName: this.table, Key: { pk: S(pk(jobId)), sk: S(itemSk(line.key)) },
        UpdateExpression: 'SET #st = :state, #line = :line, #k = :key',
        ConditionExpression: 'attribute_not_exists(sk) OR #st = :running',
        ExpressionAttributeNames: { '#st': 'state', '#k': 'key', '#line': 'line' },
        ExpressionAttributeValues: { ':state': S(state), ':line': S(JSON.stringify(line)), ':running': S('running'), ':key': S(line.key) },
      }));
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  /**
   * Move a job's counters by what one consumed batch did, in one write: the
   * items it took up first and the outcome writes that won. A process killed
   * before this write leaves the counters short; recount() repairs them.
   */
  async count(jobId: string, delta: CounterDelta): Promise<JobRecord | undefined> {
    const now = new Date().toISOString();
    const out = await this.dynamo.send(new UpdateItemCommand({
      TableName: this.table, Key: { pk: S(pk(jobId)), sk: S(META) },
      UpdateExpression: 'ADD #a :a, #b :b, #c :c SET updatedAt = :now, startedAt = if_not_exists(startedAt, :started)',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#a': 'started', '#b': 'succeeded', '#c': 'failed' },
      ExpressionAttributeValues: {
        ':a': N(delta.started), ':b': N(delta.succeeded), ':c': N(delta.failed), ':now': S(now), ':started': S(delta.startedAt ?? now),
      },
      ReturnValues: 'ALL_NEW',
    })).catch((e: unknown) => { if (e instanceof ConditionalCheckFailedException) return undefined; throw e; });
    return out?.Attributes ? fromMeta(out.Attributes) : undefined;
  }

  /** One outcome with its counter (the dead-letter and cancel paths, one item at a time); undefined when it had one already. */
  async finish(jobId: string, line: ResultLine): Promise<JobRecord | undefined> {
    if (!(await this.writeOutcome(jobId, line))) return undefined;
    return this.count(jobId, outcomeDelta(line));
  }

  /**
   * Set the counters from the item rows. An item's write and its counter's
   * are two writes (DynamoDB emulators have no transactions): a process
   * killed between them leaves a counter one short, and this repairs it.
   * Run with no consumer writing (at start), or on a job that has been idle.
   */
  async recount(jobId: string): Promise<JobRecord | undefined> {
    let started = 0;
    let succeeded = 0;
    let failed = 0;
    for await (const row of this.items(jobId)) {
      started++;
      if (row.state === 'succeeded') succeeded++;
      else if (row.state === 'failed') failed++;
    }
    const out = await this.dynamo.send(new UpdateItemCommand({
      TableName: this.table, Key: { pk: S(pk(jobId)), sk: S(META) },
      UpdateExpression: 'SET #a = :a, #b = :b, #c = :c, updatedAt = :now',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#a': 'started', '#b': 'succeeded', '#c': 'failed' },
      ExpressionAttributeValues: { ':a': N(started), ':b': N(succeeded), ':c': N(failed), ':now': S(new Date().toISOString()) },
      ReturnValues: 'ALL_NEW',
    }));
    return out.Attributes ? fromMeta(out.Attributes) : undefined;
  }

  async item(jobId: string, key: string): Promise<ItemRow | undefined> {
    const out = await this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(pk(jobId)), sk: S(itemSk(key)) }, ConsistentRead: true }));
    return out.Item ? fromItemRow(out.Item) : undefined;
  }

  /** Every item row of a job, in key order, a page at a time. */
  async *items(jobId: string): AsyncGenerator<ItemRow> {
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.dynamo.send(new QueryCommand({
        TableName: this.table, ExclusiveStartKey: start, ConsistentRead: true,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :item)',
        ExpressionAttributeValues: { ':pk': S(pk(jobId)), ':item': S('item#') },
      }));
      for (const it of out.Items ?? []) yield fromItemRow(it);
      start = out.LastEvaluatedKey;
    } while (start);
  }

  /** Move an active job to `state`; false if it was not active any more. */
  async transition(jobId: string, state: StoredJobState, extra: { error?: string } = {}): Promise<boolean> {
    try {
      await this.dynamo.send(new UpdateItemCommand({
        TableName: this.table, Key: { pk: S(pk(jobId)), sk: S(META) },
        UpdateExpression: `SET #st = :state, finishedAt = :now${extra.error ? ', #err = :err' : ''}`,
        ConditionExpression: '#st = :active',
        ExpressionAttributeNames: { '#st': 'state', ...(extra.error ? { '#err': 'error' } : {}) },
        ExpressionAttributeValues: { ':state': S(state), ':now': S(new Date().toISOString()), ':active': S('active'), ...(extra.error ? { ':err': S(extra.error) } : {}) },
      }));
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  async resultsWritten(jobId: string): Promise<void> {
    await this.dynamo.send(new UpdateItemCommand({
      TableName: this.table, Key: { pk: S(pk(jobId)), sk: S(META) },
      UpdateExpression: 'SET resultsAt = :now', ExpressionAttributeValues: { ':now': S(new Date().toISOString()) },
    }));
  }
}

function toMeta(j: JobRecord): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    pk: S(pk(j.id)), sk: S(META), id: S(j.id), pipeline: S(j.pipeline), state: S(j.state),
    total: N(j.total), started: N(j.started), succeeded: N(j.succeeded), failed: N(j.failed),
    createdAt: S(j.createdAt), outputPrefix: S(j.outputPrefix), itemsObject: S(j.itemsObject),
  };
  if (j.error) item.error = S(j.error);
  return item;
}

function fromMeta(it: Record<string, AttributeValue>): JobRecord {
  const s = (k: string) => it[k]?.S;
  const n = (k: string) => Number(it[k]?.N ?? 0);
  const job: JobRecord = {
    id: s('id')!, pipeline: s('pipeline')!, state: s('state') as StoredJobState,
    total: n('total'), started: n('started'), succeeded: n('succeeded'), failed: n('failed'),
    createdAt: s('createdAt')!, outputPrefix: s('outputPrefix')!, itemsObject: s('itemsObject')!,
  };
  for (const k of ['startedAt', 'finishedAt', 'resultsAt', 'updatedAt', 'error'] as const) if (s(k)) job[k] = s(k);
  return job;
}

function fromItemRow(it: Record<string, AttributeValue>): ItemRow {
  const row: ItemRow = { key: it.key?.S ?? '', state: it.state?.S as ItemState };
  if (it.line?.S) row.line = JSON.parse(it.line.S) as ResultLine;
  if (it.lastError?.S) row.lastError = it.lastError.S;
  if (it.lastCode?.S) row.lastCode = it.lastCode.S;
  return row;
}
