import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { makeDynamoClient } from '../../src/storage/config.js';
import { DynamoRunStore, ensureRunsTable } from '../../src/storage/dynamo-runs.js';
import { JournaledRunStore } from '../../src/storage/journal.js';
import type { RunRecord } from '../../src/storage/types.js';
import { startLocal, tempDir, type Local } from './local.js';

const CHILD = fileURLToPath(new URL('./journal-child.ts', import.meta.url));

function record(id: string, minute = 0): RunRecord {
  return {
    id, pipeline: 'journal', version: '1', status: 'succeeded', httpStatus: 200,
    startedAt: new Date(Date.UTC(2025, 0, 1, 12, minute)).toISOString(), durationMs: 3,
    stages: [{ stage: 's', batches: 1, batchSizes: [2], items: 1, queueWaitMs: 0, computeMs: 1, coldStart: false }],
  };
}

/** An endpoint where nothing listens: a DynamoDB that does not answer. */
async function deadEndpoint(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return `http://127.0.0.1:${port}`;
}

describe('JournaledRunStore', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(): Promise<{ local: Local; dir: string }> {
    const tmp = await tempDir('journal');
    cleanups.push(tmp.cleanup);
    const local = await startLocal(join(tmp.dir, 'data'));
    cleanups.push(() => local.close());
    await ensureRunsTable(local.dynamo, 'runs');
    return { local, dir: join(tmp.dir, 'runs-journal') };
  }

  it('replays to DynamoDB every record whose put() resolved before its process was killed with SIGKILL', async () => {
    const { local, dir } = await setup();
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, await deadEndpoint(), '1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
    // Killed while it is still writing: the last group may be torn, but no record it confirmed may be lost.
    const confirmed = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const counts = [...out.matchAll(/committed (\d+)\n/g)].map((m) => Number(m[1]));
        const last = counts.at(-1) ?? 0;
        if (last >= 300) { child.kill('SIGKILL'); resolve(last); }
      });
      void exited.then(() => reject(new Error(`the journal child exited early: ${stderr}`)));
    });
    expect(await exited).toBe('SIGKILL');
    expect((await readdir(dir)).length).toBeGreaterThan(0);

    const sink = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs' });
    const logs: string[] = [];
    const store = await JournaledRunStore.open({ dir, sink, log: (s) => logs.push(s) });
    expect(logs.join('\n')).toMatch(/replaying \d+ from the journal/);
    await store.flush();
    await store.close();
    const listed = await sink.listByPipeline('journal', 5_000);
    const ids = new Set(listed.map((r) => r.id));
    const missing = Array.from({ length: confirmed }, (_, i) => `killed-${i}`).filter((id) => !ids.has(id));
    expect(missing).toEqual([]);
    // Everything is in DynamoDB, so nothing is left in the journal.
    expect(await readdir(dir)).toEqual([]);
  });

  it('finds a record the moment put() resolves, while DynamoDB does not answer', async () => {
    const { dir } = await setup();
    const dynamo = makeDynamoClient({ region: 'us-east-1', bucket: 'b', runsTable: 'runs', dynamoEndpoint: await deadEndpoint(), credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    cleanups.push(async () => dynamo.destroy());
    const store = await JournaledRunStore.open({ dir, sink: new DynamoRunStore({ dynamo, table: 'runs', onError: () => undefined }), log: () => undefined });
    const r = record('unwritten');
    await store.put(r);
    expect(await store.get('unwritten')).toStrictEqual(r);
    expect(store.unwritten).toBe(1);
    await store.close({ drainMs: 10 });
    // Still in the journal for the next start.
    expect((await readdir(dir)).length).toBe(1);
  });

  it('writes groups one at a time while their fsyncs overlap: each confirmed record is one whole line on disk, and counted as unwritten meanwhile', async () => {
    const { dir } = await setup();
    const dynamo = makeDynamoClient({ region: 'us-east-1', bucket: 'b', runsTable: 'runs', dynamoEndpoint: await deadEndpoint(), credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    cleanups.push(async () => dynamo.destroy());
    const store = await JournaledRunStore.open({
      dir, sink: new DynamoRunStore({ dynamo, table: 'runs', onError: () => undefined }), log: () => undefined,
      groupMax: 3, syncsInFlight: 3, segmentBytes: 1_500,
    });
    const counts: number[] = [];
    await Promise.all(Array.from({ length: 60 }, (_, i) => store.put(record(`overlap-${i}`, i)).then(() => counts.push(store.unwritten))));
    // Nothing reaches the dead DynamoDB: every record put stays counted, from its put to now.
    expect(Math.min(...counts)).toBe(60);
    expect(store.unwritten).toBe(60);
    const { readFile } = await import('node:fs/promises');
    const files = (await readdir(dir)).sort();
    // Small segments: the groups took several files, rotated while other groups' fsyncs ran.
    expect(files.length).toBeGreaterThan(2);
    const lines = (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).join('').split('\n').filter(Boolean);
    const ids = lines.map((l) => (JSON.parse(l) as RunRecord).id).sort();
    expect(ids).toEqual(Array.from({ length: 60 }, (_, i) => `overlap-${i}`).sort());
    await store.close({ drainMs: 10 });
  });

  it('deletes each segment once all its records are in DynamoDB, and lists written and unwritten records together', async () => {
    const { local, dir } = await setup();
    const sink = new DynamoRunStore({ dynamo: local.dynamo, table: 'runs' });
    const store = await JournaledRunStore.open({ dir, sink, segmentBytes: 2_000, groupMax: 4, log: () => undefined });
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.put(record(`seg-${i}`, i))));
    // Small segments: the 40 records took several files.
    await store.flush();
    expect((await readdir(dir)).length).toBeLessThanOrEqual(1);
    const listed = await store.listByPipeline('journal', 5);
    expect(listed.map((r) => r.id)).toEqual(['seg-39', 'seg-38', 'seg-37', 'seg-36', 'seg-35']);
    await store.close();
    expect(await readdir(dir)).toEqual([]);
    expect(await sink.get('seg-0')).toStrictEqual(record('seg-0', 0));
  });
});

describe('fitRecord', () => {
  it('keeps a record with thousands of stages under the item limit, and says what it left out', async () => {
    const { fitRecord, RECORD_MAX_BYTES } = await import('../../src/storage/record-limits.js');
    const stages = Array.from({ length: 5_000 }, (_, i) => ({
      stage: `stage-${i}`, batches: 300, batchSizes: Array.from({ length: 300 }, () => 8), items: 1, queueWaitMs: 0, computeMs: 1, coldStart: false, error: 'e'.repeat(1_000),
    }));
    const fitted = fitRecord({ ...record('many'), stages, error: 'x'.repeat(10_000) });
    expect(Buffer.byteLength(JSON.stringify(fitted))).toBeLessThan(RECORD_MAX_BYTES);
    expect(fitted).toMatchObject({ truncated: true, stagesOmitted: 4_800 });
    expect(fitted.stages[0].error).toMatch(/…\(500 more\)$/);
    expect(fitRecord(record('small'))).toStrictEqual(record('small'));
  });
});
