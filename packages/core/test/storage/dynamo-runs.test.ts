import { afterEach, describe, expect, it } from 'vitest';
import { DescribeTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { makeDynamoClient } from '../../src/storage/config.js';
import { DynamoRunStore, RUNS_TABLE_KEYS, ensureRunsTable } from '../../src/storage/dynamo-runs.js';
import type { RunRecord } from '../../src/storage/types.js';
import { port, startLocal, tempDir, type Local } from './local.js';

function record(id: string, pipeline: string, startedAt: string, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    id,
    pipeline,
    version: '1',
    status: 'succeeded',
    httpStatus: 200,
    startedAt,
    durationMs: 12.5,
    stages: [
      { stage: 'det', batches: 1, batchSizes: [3], items: 1, queueWaitMs: 0.25, computeMs: 8, coldStart: true, initMs: 120 },
      { stage: 'rec', batches: 2, batchSizes: [8, 1], items: 9, queueWaitMs: 1, computeMs: 3.75, coldStart: false },
    ],
    transport: 'local',
    ...extra,
  };
}

const at = (minute: number) => new Date(Date.UTC(2025, 0, 1, 12, minute)).toISOString();

describe('DynamoRunStore', () => {
  const open: Local[] = [];
  const dirs: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const l of open.splice(0)) await l.close();
    for (const c of dirs.splice(0)) await c();
  });

  async function setup(): Promise<{ local: Local; dir: string }> {
    const { dir, cleanup } = await tempDir('runs');
    dirs.push(cleanup);
    const local = await startLocal(dir);
    open.push(local);
    await ensureRunsTable(local.dynamo, 'runs');
    return { local, dir };
  }

  it('creates the table with the agreed keys and index', async () => {
    const { local } = await setup();
    const { Table } = await local.dynamo.send(new DescribeTableCommand({ TableName: 'runs' }));
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect(Table?.KeySchema).toEqual([{ AttributeName: 'id', KeyType: 'HASH' }]);
    const index = Table?.GlobalSecondaryIndexes?.find((i) => i.IndexName === RUNS_TABLE_KEYS.index.name);
    expect(index?.KeySchema).toEqual([
      { AttributeName: 'pipeline', KeyType: 'HASH' },
      { AttributeName: 'startedAt', KeyType: 'RANGE' },
    ]);
    expect(index?.Projection?.ProjectionType).toBe('ALL');
  });

  it('returns exactly the record that was put, failures included', async () => {
    const { local } = await setup();
    const store = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs', onError: (e) => { throw e; } });
    const ok = record('run-ok', 'ocr', at(1));
    const failed = record('run-failed', 'ocr', at(2), {
      status: 'failed',
      httpStatus: 504,
      error: "stage 'rec' timed out after 30000 ms",
      stages: [{ stage: 'rec', batches: 0, batchSizes: [], items: 0, queueWaitMs: 30000, computeMs: 0, coldStart: false, error: '' }],
    });
    const expectedOk = structuredClone(ok);
    const returned = store.put(ok);
    expect(returned).toBeUndefined();
    store.put(failed);
    // Mutating after put() must not change what gets written.
    ok.status = 'failed';
    ok.stages[0].items = 99;
    await store.flush();

    expect(await store.get('run-ok')).toStrictEqual(expectedOk);
    expect(await store.get('run-failed')).toStrictEqual(failed);
    expect(await store.get('run-none')).toBeUndefined();
  });

  it('stores texts that need escaping, odd numbers and nested values as they were, alone and in a batch', async () => {
    const { local } = await setup();
    const store = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs', onError: (e) => { throw e; } });
    const odd = (id: string) => record(id, 'p "quoted" \\ back\nslash', at(5), {
      error: 'tab\t, nul \u0000, é, 日本, 😀, lone \ud800 surrogate, </script>',
      durationMs: 1e-7,
      stages: [{ stage: '{"S":"not an attribute"}', batches: 1, batchSizes: [1e21, -0, 0.1], items: 1, queueWaitMs: Number.NaN, computeMs: Number.POSITIVE_INFINITY, coldStart: false }],
      findings: [{ monitor: 'm', kind: 'range', tensor: 'x', message: 'a\u2028b', nested: { list: [true, null, undefined, [], {}], deep: { empty: '' } } } as never],
      traceId: undefined,
    });
    // One write alone (PutItem), then several queued together (BatchWriteItem).
    store.put(odd('odd-alone'));
    await store.flush();
    for (let i = 0; i < 5; i++) store.put(odd(`odd-${i}`));
    await store.flush();
    // As JSON would keep it: NaN and Infinity (which DynamoDB cannot hold) become null, undefined members go.
    const expected = (id: string) => {
      const r = JSON.parse(JSON.stringify(odd(id))) as Record<string, unknown>;
      const list = ((r.findings as Array<{ nested: { list: unknown[] } }>)[0]).nested.list;
      list[2] = null;
      return r;
    };
    expect(await store.get('odd-alone')).toStrictEqual(expected('odd-alone'));
    for (let i = 0; i < 5; i++) expect(await store.get(`odd-${i}`)).toStrictEqual(expected(`odd-${i}`));
  });

  it('sets expiresAt from startedAt and ttlDays', async () => {
    const { local } = await setup();
    const store = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs', ttlDays: 7 });
    store.put(record('ttl', 'ocr', at(0)));
    const forever = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs', ttlDays: 0 });
    forever.put(record('no-ttl', 'ocr', at(0)));
    await Promise.all([store.flush(), forever.flush()]);

    const item = await local.dynamo.send(new GetItemCommand({ TableName: 'runs', Key: { id: { S: 'ttl' } } }));
    expect(Number(item.Item?.expiresAt?.N)).toBe(Date.UTC(2025, 0, 1, 12) / 1000 + 7 * 86400);
    const none = await local.dynamo.send(new GetItemCommand({ TableName: 'runs', Key: { id: { S: 'no-ttl' } } }));
    expect(none.Item?.expiresAt).toBeUndefined();
  });

  it('lists a pipeline newest first, limited, and only that pipeline', async () => {
    const { local } = await setup();
    const store = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs' });
    // Put out of order so the order comes from the index, not from insertion.
    for (const m of [3, 0, 4, 1, 2]) store.put(record(`ocr-${m}`, 'ocr', at(m)));
    store.put(record('other-9', 'other', at(9)));
    await store.flush();

    const all = await store.listByPipeline('ocr');
    expect(all.map((r) => r.id)).toEqual(['ocr-4', 'ocr-3', 'ocr-2', 'ocr-1', 'ocr-0']);
    expect(all[0]).toStrictEqual(record('ocr-4', 'ocr', at(4)));
    expect((await store.listByPipeline('ocr', 2)).map((r) => r.id)).toEqual(['ocr-4', 'ocr-3']);
    expect((await store.listByPipeline('other')).map((r) => r.id)).toEqual(['other-9']);
    expect(await store.listByPipeline('nothing')).toEqual([]);
    await expect(store.listByPipeline('ocr', 0)).rejects.toThrow('limit must be a positive integer');
  });

  it('flush() waits for many queued records and then resolves at once when idle', async () => {
    const { local } = await setup();
    const store = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs', concurrency: 3 });
    for (let i = 0; i < 40; i++) store.put(record(`bulk-${String(i).padStart(2, '0')}`, 'bulk', at(i)));
    await store.flush();
    const listed = await store.listByPipeline('bulk', 100);
    expect(listed).toHaveLength(40);
    expect(listed[0].id).toBe('bulk-39');
    await store.flush();
  });

  it('with lingerMs, holds a part-full batch for company until flush() sends it', async () => {
    const { local } = await setup();
    // A linger far longer than the test: only flush() can have sent these.
    const store = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs', lingerMs: 600_000 });
    for (let i = 0; i < 3; i++) store.put(record(`linger-${i}`, 'linger', at(i)));
    expect(await store.get('linger-0')).toBeUndefined();
    await store.flush();
    expect((await store.listByPipeline('linger', 10)).map((r) => r.id)).toEqual(['linger-2', 'linger-1', 'linger-0']);
    // A full batch (25) does not wait.
    for (let i = 0; i < 25; i++) store.put(record(`full-${String(i).padStart(2, '0')}`, 'full', at(i)));
    let listed: RunRecord[] = [];
    while (listed.length < 25) {
      await new Promise((r) => setTimeout(r, 20));
      listed = await store.listByPipeline('full', 100);
    }
    expect(listed).toHaveLength(25);
    await store.flush();
  });

  it('rejects a record without its key attributes at put()', async () => {
    const { local } = await setup();
    const store = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs' });
    expect(() => store.put(record('', 'ocr', at(0)))).toThrow("non-empty string 'id'");
    expect(() => store.put({ ...record('x', 'ocr', at(0)), startedAt: undefined as unknown as string })).toThrow("'startedAt'");
  });

  it('keeps runs across a restart of the local services', async () => {
    const { local, dir } = await setup();
    const store = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs' });
    const r = record('persisted', 'ocr', at(5), { status: 'failed', httpStatus: 500, error: 'boom' });
    store.put(r);
    await store.flush();
    await local.close();
    open.splice(open.indexOf(local), 1);

    const again = await startLocal(dir);
    open.push(again);
    await ensureRunsTable(again.dynamo, 'runs');
    const store2 = new DynamoRunStore({ dynamo: again.dynamo, table: 'runs' });
    expect(await store2.get('persisted')).toStrictEqual(r);
    expect((await store2.listByPipeline('ocr')).map((x) => x.id)).toEqual(['persisted']);
  });

  it('retries while DynamoDB is down and writes everything once it is back', async () => {
    const { local, dir } = await setup();
    const ports = { s3Port: port(local.services.s3Endpoint), dynamoPort: port(local.services.dynamoEndpoint) };
    const settings = local.settings;
    await local.close();
    open.splice(open.indexOf(local), 1);

    // A client of its own, pointed at the now-closed port.
    const dynamo = makeDynamoClient(settings);
    const errors: unknown[] = [];
    const store = new DynamoRunStore({ dynamo, table: 'runs', onError: (e) => errors.push(e) });
    store.put(record('while-down-1', 'ocr', at(1)));
    store.put(record('while-down-2', 'ocr', at(2)));
    const flushed = store.flush();

    // Wait until the writer has seen a failure, then bring the services back on the same ports.
    while (errors.length === 0) await new Promise((r) => setTimeout(r, 20));
    expect(String((errors[0] as Error).message)).toContain('retrying');
    const back = await startLocal(dir, ports);
    open.push(back);
    await flushed;

    expect(await store.get('while-down-1')).toStrictEqual(record('while-down-1', 'ocr', at(1)));
    expect(await store.get('while-down-2')).toStrictEqual(record('while-down-2', 'ocr', at(2)));
    dynamo.destroy();
  });

  it('holds at most maxQueued waiting records, dropping (and reporting) the oldest waiting, and writes the rest once DynamoDB is back', async () => {
    const { local, dir } = await setup();
    const ports = { s3Port: port(local.services.s3Endpoint), dynamoPort: port(local.services.dynamoEndpoint) };
    const settings = local.settings;
    await local.close();
    open.splice(open.indexOf(local), 1);

    const dynamo = makeDynamoClient(settings);
    const errors: unknown[] = [];
    // One write in flight, one waiting: the third put finds the queue full.
    const store = new DynamoRunStore({ dynamo, table: 'runs', concurrency: 1, maxQueued: 1, onError: (e) => errors.push(e) });
    store.put(record('outage-1', 'ocr', at(1)));
    store.put(record('outage-2', 'ocr', at(2)));
    store.put(record('outage-3', 'ocr', at(3)));
    expect(errors.map((e) => String((e as Error).message)).filter((m) => m.includes('dropped'))).toEqual([
      'run record outage-2 dropped, not written: 1 records are queued and writes to runs are slower than records arrive',
    ]);
    const flushed = store.flush();
    const back = await startLocal(dir, ports);
    open.push(back);
    await flushed;
    expect(await store.get('outage-2')).toBeUndefined();
    expect(await store.get('outage-1')).toStrictEqual(record('outage-1', 'ocr', at(1)));
    expect(await store.get('outage-3')).toStrictEqual(record('outage-3', 'ocr', at(3)));
    dynamo.destroy();
  });
});

describe('DynamoRunStore batching', () => {
  it('writes a backlog in batches, cuts a record over the item limit down to size, and drops only the record DynamoDB refuses', async () => {
    const { dir, cleanup } = await tempDir('runs-batch');
    const local = await startLocal(dir);
    try {
      await ensureRunsTable(local.dynamo, 'runs');
      const errors: unknown[] = [];
      const store = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs', concurrency: 1, onError: (e) => errors.push(e) });
      // Over DynamoDB's 400 KB item limit as given: stored cut, and saying so.
      const huge = record('huge', 'batch', at(30), { error: 'x'.repeat(500_000) });
      // A number DynamoDB cannot hold: its whole batch is refused, then retried one by one.
      const bad = record('bad', 'batch', at(31), { durationMs: 1e200 });
      for (let i = 0; i < 30; i++) store.put(i === 7 ? huge : i === 11 ? bad : record(`b-${String(i).padStart(2, '0')}`, 'batch', at(i)));
      await store.flush();
      const listed = await store.listByPipeline('batch', 100);
      expect(listed).toHaveLength(29);
      expect(listed.map((r) => r.id)).not.toContain('bad');
      expect(await store.get('b-29')).toStrictEqual(record('b-29', 'batch', at(29)));
      const stored = await store.get('huge');
      expect(stored).toMatchObject({ id: 'huge', status: 'succeeded', truncated: true });
      expect(stored!.error).toMatch(/^x{2000}…\(498000 more\)$/);
      expect(errors).toHaveLength(1);
      expect(String((errors[0] as Error).message)).toContain('run record bad refused');
    } finally {
      await local.close();
      await cleanup();
    }
  });
});
