/**
 * The run record writer alone (storage/dynamo-runs.ts, as `ensemble serve`
 * configures it: BatchWriteItem of up to 25, 4 calls in flight, 250 ms linger)
 * against the local DynamoDB emulator in a process of its own, as the
 * benchmark runs it: how many records a second reach the table, and what the
 * writer costs this process per record. The records are copies of the one the
 * tiny pipeline's request leaves (new ids), fed with at most 2,000 waiting, as
 * the journal feeds the writer; `small` is the same with only the record's
 * top-level fields, to tell the cost of a call from the cost of a record's size.
 * Also the AWS SDK's own cost per BatchWriteItem call of 25 small items
 * (the SDK serialising the command, as any client would), and the record's
 * size as DynamoDB bills it (the developer guide's "Item sizes and formats"),
 * stored as it is (nested attribute values) and as one JSON string attribute.
 *
 *   npx tsx scripts/run-record-sink.ts              # 20,000 records per pass, 2 passes each
 *   RECORDS=5000 PASSES=3 npx tsx scripts/run-record-sink.ts
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BatchWriteItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoRunStore } from '../packages/core/src/storage/dynamo-runs.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { startBenchServer } from '../packages/tools/src/bench/bench-server.js';
import { demoRequests } from '../packages/tools/src/bench/scenarios/tiny.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const total = Number(process.env.RECORDS ?? 20_000);
const passes = Number(process.env.PASSES ?? 2);
if (![total, passes].every((n) => Number.isInteger(n) && n >= 1)) throw new Error('RECORDS and PASSES must be positive integers');
const WINDOW = 2_000;

const dataDir = await mkdtemp(join(tmpdir(), 'ensemble-record-sink-'));
const server = await startBenchServer({ dataDir, modelsDir: join(root, 'models'), pipelines: ['demo'] });
const rows: string[] = [];
try {
  const req = demoRequests()[0];
  const res = await fetch(server.url + req.path, { method: 'POST', body: req.body, headers: { 'content-type': 'application/json' } });
  const id = res.headers.get('x-ensemble-run-id');
  if (!res.ok || !id) throw new Error(`the demo request failed: ${res.status}`);
  await server.env.runs.flush();
  const served = await server.env.runs.get(id);
  if (!served) throw new Error(`run ${id} is not in the table`);
  const json = JSON.stringify(served);
  const { stages: _stages, profile: _profile, ...top } = served;
  const kinds: Record<string, () => RunRecord> = {
    [`tiny (${Buffer.byteLength(json)} bytes of JSON)`]: () => ({ ...(JSON.parse(json) as RunRecord), id: randomUUID() }),
    [`small (${Buffer.byteLength(JSON.stringify({ ...top, stages: [] }))} bytes)`]: () => ({ ...top, stages: [], id: randomUUID() }),
  };
  const expiresAt = Math.floor(Date.now() / 1000) + 30 * 86_400;
  const nested = itemSize({ ...served, expiresAt });
  const asJson = itemSize({ id: served.id, pipeline: served.pipeline, startedAt: served.startedAt, expiresAt, record: json });
  console.log(`DynamoDB item size of the tiny record: ${nested} bytes as nested attributes (${units(nested)}), ${asJson} bytes as one JSON attribute (${units(asJson)})`);
  const writer = new DynamoRunStore({ dynamo: server.env.dynamo, table: server.env.settings.runsTable, lingerMs: 250 });
  for (let pass = 1; pass <= passes; pass++) {
    for (const [kind, make] of Object.entries(kinds)) {
      const records = Array.from({ length: total }, make);
      const u0 = process.cpuUsage();
      const t0 = performance.now();
      let next = 0;
      await new Promise<void>((done) => {
        let settled = 0;
        const feed = () => {
          while (next < total && next - settled < WINDOW) {
            void writer.write(records[next++]).then(() => {
              if (++settled === total) done(); else feed();
            });
          }
        };
        feed();
      });
      const ms = performance.now() - t0;
      const u = process.cpuUsage(u0);
      rows.push(`| ${pass} | ${kind} | ${(total * 1000 / ms).toFixed(0)} | ${((u.user + u.system) / total).toFixed(1)} |`);
      console.error(rows[rows.length - 1]);
    }
  }
  // The SDK's own cost per call: 25 small items, the SDK serialising the command.
  const calls = 400;
  for (let pass = 1; pass <= passes; pass++) {
    const item = () => ({ id: { S: randomUUID() }, pipeline: { S: 'sdk' }, startedAt: { S: new Date().toISOString() } });
    const commands = Array.from({ length: calls }, () => new BatchWriteItemCommand({ RequestItems: { [server.env.settings.runsTable]: Array.from({ length: 25 }, () => ({ PutRequest: { Item: item() } })) } }));
    const u0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < calls; i += 4) await Promise.all(commands.slice(i, i + 4).map((c) => server.env.dynamo.send(c)));
    const u = process.cpuUsage(u0);
    rows.push(`| ${pass} | SDK alone: BatchWriteItem of 25 small items, 4 in flight | ${(calls * 25 * 1000 / (performance.now() - t0)).toFixed(0)} | ${((u.user + u.system) / calls / 25).toFixed(1)} (${((u.user + u.system) / calls / 1000).toFixed(2)} ms a call) |`);
    console.error(rows[rows.length - 1]);
  }
} finally {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
/** DynamoDB's size of a value: UTF-8 bytes of a string, about one byte per two significant digits of a number plus one, 3 bytes and one per member for a map or list. */
function valueSize(v: unknown): number {
  if (v === null || typeof v === 'boolean') return 1;
  if (typeof v === 'number') return Math.ceil(Math.max(1, String(Math.abs(v)).replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').length) / 2) + 1;
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return 3 + v.reduce((n: number, x) => n + 1 + valueSize(x), 0);
  return 3 + Object.entries(v as object).filter(([, x]) => x !== undefined).reduce((n, [k, x]) => n + 1 + Buffer.byteLength(k) + valueSize(x), 0);
}
/** Write request units for one item of `bytes` (1 KB each, rounded up). */
function units(bytes: number): string {
  const n = Math.ceil(bytes / 1024);
  return `${n} write unit${n === 1 ? '' : 's'}`;
}
function itemSize(item: object): number {
  return Object.entries(item).filter(([, x]) => x !== undefined).reduce((n, [k, x]) => n + Buffer.byteLength(k) + valueSize(x), 0);
}

console.log('\n| pass | records | records/s into the table | writer CPU per record (µs) |');
console.log('| --- | --- | ---: | ---: |');
for (const r of rows) console.log(r);
process.exit(0);
