import {
  BatchWriteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { EnsembleError } from '../errors.js';
import { fromItem, itemJson } from './attribute-values.js';
import { RUNS_TABLE_KEYS } from './runs-table.js';
import { fitRecord, isFitted } from './record-limits.js';
import type { RunRecord, RunStore } from './types.js';

export { RUNS_TABLE_KEYS, ensureRunsTable, runsTableDefinition } from './runs-table.js';

export interface DynamoRunStoreOptions {
  dynamo: DynamoDBClient;
  table: string;
  /** Records expire this many days after they started; 0 keeps them forever. Default 30. */
  ttlDays?: number;
  /** Told about every failed write (which is retried) and every record DynamoDB refuses outright. */
  onError?: (e: unknown) => void;
  /** Write calls in flight at once. Default 4. */
  concurrency?: number;
  /**
   * Hold a part-full batch up to this long for more records (flush() sends at
   * once). Each call has a fixed cost (signing, middleware, HTTP) that a
   * steady trickle of records would otherwise pay per record. Default 0: a
   * record leaves as soon as a call is free — for hosts that may freeze
   * between requests (Lambda).
   */
  lingerMs?: number;
  /**
   * Records held in memory, unwritten. Past it the oldest is dropped (and
   * reported): a writer that falls behind must not grow the process's memory
   * without bound. A store that must not drop (the journal) keeps fewer
   * than this in here. Default 100,000.
   */
  maxQueued?: number;
}

interface Pending {
  seq: number;
  id: string;
  /**
   * The item as DynamoDB's JSON (attribute values) in UTF-8, made once at
   * put(): a batch is these bytes joined, and a retry reuses them. Bytes, not
   * the string: a string built piece by piece is held as its pieces until
   * flattened, which costs more to keep queued and to encode at each send.
   */
  item: Buffer;
  attempts: number;
  queuedAt: number;
  /** Write alone with PutItem: its batch was refused, so find out whether this item is the one DynamoDB refuses. */
  alone?: boolean;
  settle?: (outcome: WriteOutcome) => void;
}

/** What became of one record: in the table, refused by DynamoDB for good, or dropped from a full queue. */
export type WriteOutcome = 'written' | 'refused' | 'dropped';

/** DynamoDB's BatchWriteItem limit. */
const BATCH_MAX = 25;

const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 5_000;
const DAY_SECONDS = 86_400;

/**
 * Run records in DynamoDB, written off the request path: put() only queues,
 * a background writer sends them (BatchWriteItem when several are queued,
 * so a busy gateway pays for one request per 25 records, not per record)
 * and retries failures with backoff.
 */
export class DynamoRunStore implements RunStore {
  private readonly dynamo: DynamoDBClient;
  private readonly table: string;
  private readonly ttlDays: number;
  private readonly onError: (e: unknown) => void;
  private readonly concurrency: number;
  private readonly lingerMs: number;
  private readonly maxQueued: number;
  /** The request bodies' fixed parts, around the items. */
  private readonly putHead: Buffer;
  private readonly batchHead: Buffer;

  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private consecutiveFailures = 0;
  /** Sequence numbers let flush() wait for what was queued before it, not for later puts. */
  private nextSeq = 1;
  /** Every seq below this is written (or refused); finished ones above it wait in `finished`. */
  private lowWater = 1;
  private readonly finished = new Set<number>();
  private readonly waiters: Array<{ target: number; resolve: () => void }> = [];

  constructor(opts: DynamoRunStoreOptions) {
    this.dynamo = opts.dynamo;
    this.table = opts.table;
    this.ttlDays = opts.ttlDays ?? 30;
    this.onError = opts.onError ?? defaultOnError;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.lingerMs = Math.max(0, opts.lingerMs ?? 0);
    this.maxQueued = Math.max(1, opts.maxQueued ?? 100_000);
    this.putHead = Buffer.from(`{"TableName":${JSON.stringify(this.table)},"Item":`);
    this.batchHead = Buffer.from(`{"RequestItems":{${JSON.stringify(this.table)}:[`);
  }

  put(record: RunRecord): void {
    this.enqueue(record);
  }

  /** Queue a record and learn when it is written (or refused, or dropped). */
  write(record: RunRecord): Promise<WriteOutcome> {
    return new Promise((settle) => this.enqueue(record, settle));
  }

  /** Records queued or being written. */
  get pending(): number {
    return this.nextSeq - this.lowWater;
  }

  private enqueue(record: RunRecord, settle?: (outcome: WriteOutcome) => void): void {
    // Marshal now: the caller may reuse or mutate the object after put() returns.
    const item = this.toItem(record);
    if (this.queue.length >= this.maxQueued) {
      // Bound the memory, say so plainly, and keep the newest.
      const dropped = this.queue.shift()!;
      const why = this.consecutiveFailures > 0 ? `writes to ${this.table} are failing (${this.consecutiveFailures} in a row)` : `writes to ${this.table} are slower than records arrive`;
      this.report(new EnsembleError(`run record ${dropped.id} dropped, not written: ${this.maxQueued} records are queued and ${why}`));
      this.finish(dropped, 'dropped');
    }
    this.queue.push({ seq: this.nextSeq++, id: record.id, item, attempts: 0, queuedAt: performance.now(), settle });
    this.pump();
  }

  flush(): Promise<void> {
    const target = this.nextSeq - 1;
    if (this.lowWater > target) return Promise.resolve();
    // A pending retry must keep the process alive while someone waits for it.
    this.retryTimer?.ref();
    const done = new Promise<void>((resolve) => this.waiters.push({ target, resolve }));
    // Someone is waiting: nothing lingers any more.
    this.pump();
    return done;
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const out = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { [RUNS_TABLE_KEYS.partitionKey]: { S: id } },
        ConsistentRead: true,
      }),
    );
    return out.Item ? fromRunItem(out.Item) : undefined;
  }

  async listByPipeline(pipeline: string, limit = 20): Promise<RunRecord[]> {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new EnsembleError(`listByPipeline: limit must be a positive integer, got ${limit}`, 'invalid_input');
    }
    const { index } = RUNS_TABLE_KEYS;
    const records: RunRecord[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: index.name,
          KeyConditionExpression: '#p = :p',
          ExpressionAttributeNames: { '#p': index.partitionKey },
          ExpressionAttributeValues: { ':p': { S: pipeline } },
          ScanIndexForward: false,
          Limit: limit - records.length,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? []) records.push(fromRunItem(item));
      start = out.LastEvaluatedKey;
    } while (start && records.length < limit);
    return records;
  }

  private toItem(record: RunRecord): Buffer {
    const { partitionKey, index, ttl } = RUNS_TABLE_KEYS;
    for (const key of [partitionKey, index.partitionKey, index.sortKey] as const) {
      const v = record[key];
      if (typeof v !== 'string' || v === '') {
        throw new EnsembleError(`run record needs a non-empty string '${key}', got ${JSON.stringify(v)}`);
      }
    }
    // The journal hands over the record it fitted to write its line: no second copy.
    const fitted = (isFitted(record) ? record : fitRecord(record)) as unknown as Record<string, unknown>;
    if (this.ttlDays <= 0) return Buffer.from(itemJson(fitted));
    const started = Date.parse(record.startedAt);
    const base = Number.isFinite(started) ? started : Date.now();
    // The writer's attribute: it takes the place of any record field of that name, as it always did.
    return Buffer.from(itemJson(fitted, { key: ttl, value: Math.floor(base / 1000) + Math.round(this.ttlDays * DAY_SECONDS) }));
  }

  private batchBody(batch: Pending[]): Buffer {
    const parts: Buffer[] = [this.batchHead];
    batch.forEach((p, i) => {
      if (i > 0) parts.push(COMMA);
      parts.push(PUT_REQUEST_HEAD, p.item, PUT_REQUEST_TAIL);
    });
    parts.push(BATCH_TAIL);
    return Buffer.concat(parts);
  }

  private pump(): void {
    while (this.retryTimer === undefined && this.inFlight < this.concurrency && this.queue.length > 0) {
      const wait = this.lingerLeft();
      if (wait > 0) {
        this.lingerTimer ??= setTimeout(() => { this.lingerTimer = undefined; this.pump(); }, wait);
        this.lingerTimer.unref();
        return;
      }
      const batch = [this.queue.shift()!];
      if (!batch[0].alone) {
        while (batch.length < BATCH_MAX && this.queue.length > 0 && !this.queue[0].alone) batch.push(this.queue.shift()!);
      }
      if (batch.length === 1) this.writeOne(batch[0]); else this.writeBatch(batch);
    }
  }

  /** How much longer the queue's head may wait for company; 0 to send now. */
  private lingerLeft(): number {
    if (this.lingerMs === 0 || this.waiters.length > 0 || this.queue.length >= BATCH_MAX || this.queue[0].alone) return 0;
    return Math.max(0, this.queue[0].queuedAt + this.lingerMs - performance.now());
  }

  private writeOne(p: Pending): void {
    this.inFlight++;
    p.attempts++;
    this.dynamo
      .send(withBody(new PutItemCommand({ TableName: this.table, Item: {} }), Buffer.concat([this.putHead, p.item, CLOSE])))
      .then(
        () => {
          this.consecutiveFailures = 0;
          this.finish(p, 'written');
        },
        (e: unknown) => {
          if (isRefused(e)) {
            // DynamoDB will never take this item (too large, malformed): retrying would wedge flush() forever.
            this.report(new EnsembleError(`run record ${p.id} refused by DynamoDB table ${this.table}, not written: ${message(e)}`));
            this.finish(p, 'refused');
            return;
          }
          this.failed([p], e);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.pump();
      });
  }

  private writeBatch(batch: Pending[]): void {
    this.inFlight++;
    for (const p of batch) p.attempts++;
    this.dynamo
      .send(withBody(new BatchWriteItemCommand({ RequestItems: { [this.table]: [] } }), this.batchBody(batch)))
      .then(
        (out) => {
          this.consecutiveFailures = 0;
          // Throttled items come back unprocessed: retry those, the rest are written.
          const left = new Set((out.UnprocessedItems?.[this.table] ?? []).map((r) => r.PutRequest?.Item?.[RUNS_TABLE_KEYS.partitionKey]?.S));
          const retry = batch.filter((p) => left.has(p.id));
          for (const p of batch) if (!left.has(p.id)) this.finish(p, 'written');
          if (retry.length) {
            this.consecutiveFailures++;
            this.queue.unshift(...retry);
            this.scheduleRetry();
          }
        },
        (e: unknown) => {
          if (isRefused(e)) {
            // One bad item refuses the whole batch: write them one by one so only that one is dropped.
            for (const p of batch) p.alone = true;
            this.queue.unshift(...batch);
            return;
          }
          this.failed(batch, e);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.pump();
      });
  }

  private failed(batch: Pending[], e: unknown): void {
    this.consecutiveFailures++;
    const what = batch.length === 1 ? `run record ${batch[0].id}` : `${batch.length} run records (${batch[0].id}, ...)`;
    this.report(new EnsembleError(`writing ${what} to ${this.table} failed (attempt ${batch[0].attempts}), retrying: ${message(e)}`));
    this.queue.unshift(...batch);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(this.consecutiveFailures - 1, 16));
    const jitter = Math.random() * delay * 0.2;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay + jitter);
    // Without a flush() waiting, a retry alone should not hold the process open.
    if (this.waiters.length === 0) this.retryTimer.unref();
  }

  private finish(p: Pending, outcome: WriteOutcome): void {
    p.settle?.(outcome);
    this.finished.add(p.seq);
    while (this.finished.delete(this.lowWater)) this.lowWater++;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i];
      if (w.target < this.lowWater) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  private report(e: unknown): void {
    try {
      this.onError(e);
    } catch {
      // A throwing error hook must not stop the writer.
    }
  }
}

/**
 * The request body of a put, written here from items already in DynamoDB's
 * JSON, in place of the SDK's serialisation of the command's input (which is
 * left with the table name only, so endpoint rules that read it still can).
 * The rest is the SDK's: signing, endpoint, retries, HTTP, the answer's parsing.
 * In the tiny pipeline's profile the SDK's marshalling of records took more of
 * the gateway's CPU than running the requests' models did.
 */
function withBody<C extends PutItemCommand | BatchWriteItemCommand>(command: C, body: Buffer): C {
  const length = String(body.byteLength);
  (command.middlewareStack as unknown as BuildStack).add(
    (next) => (args) => {
      const request = args.request as { body?: unknown; headers?: Record<string, string> };
      request.body = body;
      if (request.headers) request.headers['content-length'] = length;
      return next(args);
    },
    // Build runs after serialize and before the content length, signing and sending.
    { step: 'build', priority: 'high', name: 'ensembleRunRecordBody' },
  );
  return command;
}

/** The part of a command's middleware stack withBody uses: a build-step middleware sees the serialised HTTP request. */
interface BuildStack {
  add(
    middleware: (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => Promise<unknown>,
    options: { step: 'build'; priority: 'high'; name: string },
  ): void;
}

const CLOSE = Buffer.from('}');
const PUT_REQUEST_HEAD = Buffer.from('{"PutRequest":{"Item":');
const PUT_REQUEST_TAIL = Buffer.from('}}');
const COMMA = Buffer.from(',');
const BATCH_TAIL = Buffer.from(']}}');

function fromRunItem(item: Record<string, AttributeValue>): RunRecord {
  const value = fromItem(item);
  delete value[RUNS_TABLE_KEYS.ttl];
  return value as unknown as RunRecord;
}

function isRefused(e: unknown): boolean {
  return (e as { name?: string }).name === 'ValidationException';
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function defaultOnError(e: unknown): void {
  process.stderr.write(`ensemble: run store: ${message(e)}\n`);
}
