import { mkdir, open, readdir, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { UnavailableError } from '../errors.js';
import type { WriteOutcome } from './dynamo-runs.js';
import { fitRecord } from './record-limits.js';
import type { RunRecord, RunStore } from './types.js';

/** Where the journal sends records: DynamoRunStore, which says what became of each one. */
export interface RunSink {
  write(record: RunRecord): Promise<WriteOutcome>;
  get(id: string): Promise<RunRecord | undefined>;
  listByPipeline(pipeline: string, limit?: number): Promise<RunRecord[]>;
  flush(): Promise<void>;
}

export interface JournaledRunStoreOptions {
  /** The journal's folder (`<dataDir>/runs-journal`), created if missing. */
  dir: string;
  sink: RunSink;
  /**
   * Records not yet in the sink past which new requests are refused (admit()
   * answers 503 with Retry-After) until the backlog is down to `lowWater`.
   * Default 20,000.
   */
  highWater?: number;
  /** Default half of highWater. */
  lowWater?: number;
  /** The same bound in bytes of record JSON, which is what memory holds. Default 64 MiB. */
  highWaterBytes?: number;
  /** Records handed to the sink and not yet settled, at most. Default 2,000 (under DynamoRunStore's maxQueued). */
  sinkWindow?: number;
  /** A segment file is closed past this size, and deleted once all its records are in the sink. Default 8 MiB. */
  segmentBytes?: number;
  /** Records per group commit (one write, one fsync), at most. Default 1,024. */
  groupMax?: number;
  /**
   * Group commits whose fsync may be in flight at once. Writes stay one at a
   * time, in order; each group answers once its own fsync is done. On a disk
   * where an fsync waits behind other processes' I/O (tens of milliseconds),
   * one group at a time made the fsync, not the CPU, the gateway's limit.
   * Default 2: the fsyncs share libuv's thread pool with ONNX Runtime's runs.
   */
  syncsInFlight?: number;
  /** Told what the journal does: replays, refusals, recoveries, failures. */
  log?: (s: string) => void;
}

interface Entry {
  id: string;
  pipeline: string;
  startedAt: string;
  /** The record as one line of JSON, newline included. */
  line: string;
  /** The record itself while it waits for the sink, when it was put in this process (not replayed): no parse to send it. */
  record?: RunRecord;
  bytes: number;
  /** Undefined when the journal could not write it (it then lives in memory only). */
  segment?: Segment;
}

interface Segment {
  seq: number;
  path: string;
  bytes: number;
  /** Records in this file not yet settled in the sink. */
  unsettled: number;
  handle?: FileHandle;
  /** fsyncs in flight on `handle`: it is closed only after them. */
  syncs: Set<Promise<unknown>>;
}

interface Waiting {
  entry: Entry;
  resolve: () => void;
}

const SEGMENT_SUFFIX = '.ndjson';

/**
 * Run records made durable before the response leaves: put() appends the
 * record to a segment file in the data folder and resolves once the file is
 * fsynced. Records arriving while one group is being written form the next
 * group, so a busy gateway pays one write and one fsync per group, not per
 * record; the next group's write need not wait for the last group's fsync
 * (`syncsInFlight`), only its answer waits for its own. A background loop hands committed records to the sink (DynamoDB)
 * and deletes a segment once every record in it is there; on open, what a
 * crash left in the journal is replayed.
 *
 * When the sink is slower than requests arrive, the backlog grows to the
 * high-water mark and admit() refuses new requests until it drains: records
 * are never dropped to make room.
 */
export class JournaledRunStore implements RunStore {
  private readonly dir: string;
  private readonly sink: RunSink;
  private readonly highWater: number;
  private readonly lowWater: number;
  private readonly highWaterBytes: number;
  private readonly sinkWindow: number;
  private readonly segmentBytes: number;
  private readonly groupMax: number;
  private readonly syncsInFlight: number;
  private readonly log: (s: string) => void;

  /** Committed (or unjournaled) records not yet settled in the sink, by id. */
  private readonly backlog = new Map<string, Entry>();
  private backlogBytes = 0;
  private readonly toSend: Entry[] = [];
  private sending = 0;
  private group: Waiting[] = [];
  /** A group's write is under way (writes are one at a time, in order). */
  private committing = false;
  /** Groups written and waiting for their fsync, and the records in them. */
  private syncing = 0;
  private syncingRecords = 0;
  private commitScheduled = false;
  private current: Segment | undefined;
  private nextSegment = 1;
  private refusing = false;
  private refusedSince = 0;
  private refusedCount = 0;
  private settledCount = 0;
  private statusTimer: NodeJS.Timeout | undefined;
  /** Records the sink took per second, last measured while refusing. */
  private lastRate = 0;
  private readonly idle: Array<() => void> = [];
  private readonly removing = new Set<Promise<void>>();
  private readonly committed: Array<() => void> = [];

  private constructor(opts: JournaledRunStoreOptions) {
    this.dir = opts.dir;
    this.sink = opts.sink;
    this.highWater = Math.max(1, opts.highWater ?? 20_000);
    this.lowWater = Math.min(this.highWater - 1, Math.max(0, opts.lowWater ?? Math.floor(this.highWater / 2)));
    this.highWaterBytes = Math.max(1, opts.highWaterBytes ?? 64 * 1024 * 1024);
    this.sinkWindow = Math.max(1, opts.sinkWindow ?? 2_000);
    this.segmentBytes = Math.max(1, opts.segmentBytes ?? 8 * 1024 * 1024);
    this.groupMax = Math.max(1, opts.groupMax ?? 1_024);
    this.syncsInFlight = Math.max(1, opts.syncsInFlight ?? 2);
    this.log = opts.log ?? ((s) => process.stderr.write(`ensemble: ${s}\n`));
  }

  /** Open the journal in `dir` and start replaying what an earlier process left in it. */
  static async open(opts: JournaledRunStoreOptions): Promise<JournaledRunStore> {
    const store = new JournaledRunStore(opts);
    await store.replay();
    return store;
  }

  /** Records not yet in the sink (committing, committed or being written). */
  get unwritten(): number {
    return this.backlog.size + this.group.length + this.syncingRecords;
  }

  put(record: RunRecord): Promise<void> {
    const fitted = fitRecord(record);
    const line = `${JSON.stringify(fitted)}\n`;
    const entry: Entry = { id: fitted.id, pipeline: fitted.pipeline, startedAt: fitted.startedAt, line, record: fitted, bytes: Buffer.byteLength(line) };
    return new Promise((resolve) => {
      this.group.push({ entry, resolve });
      this.scheduleCommit();
    });
  }

  admit(): Error | undefined {
    const count = this.unwritten;
    if (this.refusing && count <= this.lowWater && this.backlogBytes <= this.highWaterBytes / 2) this.resume();
    else if (!this.refusing && (count >= this.highWater || this.backlogBytes >= this.highWaterBytes)) this.refuse();
    if (!this.refusing) return undefined;
    this.refusedCount++;
    return new UnavailableError(
      `run records are not being written fast enough: ${count} wait for DynamoDB (high-water mark ${this.highWater}); retry later`,
      this.retryAfterSeconds(),
    );
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const entry = this.backlog.get(id);
    if (entry) return JSON.parse(entry.line) as RunRecord;
    return this.sink.get(id);
  }

  async listByPipeline(pipeline: string, limit = 20): Promise<RunRecord[]> {
    // Take the unwritten ones before asking the sink: a record written while the query runs leaves the
    // backlog and may be missing from the query's answer, but not from both.
    const unwritten = [...this.backlog.values()].filter((e) => e.pipeline === pipeline);
    // The sink checks `limit`, so a bad one is refused the same way.
    const written = await this.sink.listByPipeline(pipeline, limit);
    if (!unwritten.length) return written;
    unwritten.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
    const byId = new Map<string, RunRecord>();
    for (const e of unwritten.slice(0, limit)) byId.set(e.id, JSON.parse(e.line) as RunRecord);
    for (const r of written) if (!byId.has(r.id)) byId.set(r.id, r);
    return [...byId.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0)).slice(0, limit);
  }

  /** Everything put so far is in the sink. */
  async flush(): Promise<void> {
    await this.committedAll();
    if (this.backlog.size === 0) return;
    await new Promise<void>((r) => this.idle.push(r));
  }

  /**
   * Commit what is pending, give the sink up to `drainMs` to take the backlog,
   * and close the files. What is left stays in the journal for the next start.
   */
  async close({ drainMs = 5_000 }: { drainMs?: number } = {}): Promise<void> {
    await this.committedAll();
    if (this.backlog.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((r) => { timer = setTimeout(r, drainMs); });
      await Promise.race([this.flush(), late]);
      clearTimeout(timer);
    }
    clearInterval(this.statusTimer);
    const left = this.backlog.size;
    const seg = this.current;
    this.current = undefined;
    if (seg) await this.retire(seg);
    await Promise.all(this.removing);
    if (left > 0) this.log(`run records: ${left} not yet in DynamoDB stay in the journal (${this.dir}) and are written at the next start`);
  }

  private committedAll(): Promise<void> {
    if (!this.committing && this.syncing === 0 && this.group.length === 0) return Promise.resolve();
    return new Promise((r) => this.committed.push(r));
  }

  private scheduleCommit(): void {
    if (this.committing || this.syncing >= this.syncsInFlight || this.commitScheduled) return;
    this.commitScheduled = true;
    // Records put in the same turn of the event loop share the group.
    setImmediate(() => {
      this.commitScheduled = false;
      void this.commit();
    });
  }

  private async commit(): Promise<void> {
    if (this.committing || this.syncing >= this.syncsInFlight || this.group.length === 0) return;
    this.committing = true;
    const batch = this.group.splice(0, this.groupMax);
    this.syncing++;
    this.syncingRecords += batch.length;
    let segment: Segment | undefined;
    let synced: Promise<void> | undefined;
    try {
      segment = await this.segmentFor();
      const buf = Buffer.from(batch.map((w) => w.entry.line).join(''));
      let at = 0;
      while (at < buf.length) at += (await segment.handle!.write(buf, at, buf.length - at)).bytesWritten;
      segment.bytes += buf.length;
      // Counted now, so the segment is not deleted as settled while this group's fsync runs.
      segment.unsettled += batch.length;
      // Started after this group's write returned, so it covers it (and every earlier group's).
      synced = segment.handle!.datasync();
      const seg = segment;
      seg.syncs.add(synced);
      void synced.then(() => seg.syncs.delete(synced!), () => seg.syncs.delete(synced!));
    } catch (e) {
      this.writeFailed(batch.length, e);
      segment = undefined;
    }
    this.committing = false;
    // The next group may be written while this one's fsync runs.
    if (this.group.length > 0) this.scheduleCommit();
    if (synced) {
      try {
        await synced;
      } catch (e) {
        this.writeFailed(batch.length, e);
        segment!.unsettled -= batch.length;
        segment = undefined;
      }
    }
    for (const { entry } of batch) {
      entry.segment = segment;
      this.enter(entry);
    }
    this.syncing--;
    this.syncingRecords -= batch.length;
    for (const w of batch) w.resolve();
    this.pump();
    if (this.group.length > 0) void this.commit();
    else if (!this.committing && this.syncing === 0) for (const r of this.committed.splice(0)) r();
  }

  /** The disk failed us: the records still go to DynamoDB, from memory, and the log says they are not durable. */
  private writeFailed(records: number, e: unknown): void {
    this.log(`run records: writing ${records} to the journal in ${this.dir} failed, so they are held in memory only until DynamoDB has them: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** The segment to append to: the current one, or a new one when it is full. */
  private async segmentFor(): Promise<Segment> {
    if (this.current && this.current.bytes >= this.segmentBytes) {
      const full = this.current;
      this.current = undefined;
      await this.retire(full);
    }
    if (!this.current) {
      const seq = this.nextSegment++;
      const path = join(this.dir, `${String(seq).padStart(12, '0')}${SEGMENT_SUFFIX}`);
      const handle = await open(path, 'a');
      this.current = { seq, path, bytes: 0, unsettled: 0, handle, syncs: new Set() };
    }
    return this.current;
  }

  /** A segment no longer appended to: close it, and delete it if nothing in it waits for the sink. */
  private async retire(seg: Segment): Promise<void> {
    const handle = seg.handle;
    seg.handle = undefined;
    // A group fsyncing on it answers only when its fsync is done: close after.
    await Promise.allSettled([...seg.syncs]);
    await handle?.close().catch(() => undefined);
    if (seg.unsettled === 0) await this.remove(seg);
  }

  private async remove(seg: Segment): Promise<void> {
    try {
      await unlink(seg.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log(`run records: could not delete journal segment ${seg.path}: ${(e as Error).message}`);
    }
  }

  private track(p: Promise<void>): void {
    this.removing.add(p);
    void p.finally(() => this.removing.delete(p));
  }

  private enter(entry: Entry): void {
    const old = this.backlog.get(entry.id);
    if (old) this.backlogBytes -= old.bytes;
    this.backlog.set(entry.id, entry);
    this.backlogBytes += entry.bytes;
    this.toSend.push(entry);
  }

  private pump(): void {
    while (this.sending < this.sinkWindow && this.toSend.length > 0) {
      const entry = this.toSend.shift()!;
      this.sending++;
      const record = entry.record ?? (JSON.parse(entry.line) as RunRecord);
      this.sink.write(record).then(
        (outcome) => this.settle(entry, outcome),
        (e: unknown) => {
          // A record the sink cannot even take (it throws on marshalling): keeping it would wedge the journal.
          this.log(`run records: ${entry.id} cannot be written and is given up: ${e instanceof Error ? e.message : String(e)}`);
          this.settle(entry, 'refused');
        },
      );
    }
  }

  private settle(entry: Entry, outcome: WriteOutcome): void {
    this.sending--;
    if (outcome === 'dropped') {
      // The sink's own queue overflowed (it should not, under sinkWindow): the journal still has it, so send it again.
      this.toSend.push(entry);
      this.pump();
      return;
    }
    this.settledCount++;
    if (this.backlog.get(entry.id) === entry) {
      this.backlog.delete(entry.id);
      this.backlogBytes -= entry.bytes;
    }
    const seg = entry.segment;
    if (seg && --seg.unsettled === 0 && seg !== this.current && !seg.handle) this.track(this.remove(seg));
    if (this.refusing && this.unwritten <= this.lowWater) this.resume();
    if (this.backlog.size === 0) for (const r of this.idle.splice(0)) r();
    this.pump();
  }

  private refuse(): void {
    this.refusing = true;
    this.refusedSince = performance.now();
    this.refusedCount = 0;
    this.log(`run records: ${this.unwritten} are waiting for DynamoDB (high-water mark ${this.highWater}, ${mib(this.backlogBytes)} MiB): refusing new infer requests with 503 until fewer than ${this.lowWater} wait`);
    let settledAt = this.settledCount;
    this.statusTimer = setInterval(() => {
      const rate = (this.settledCount - settledAt) / 5;
      settledAt = this.settledCount;
      this.lastRate = rate;
      this.log(`run records: still refusing requests: ${this.unwritten} wait for DynamoDB, ${Math.round(rate)} written per second, ${this.refusedCount} requests refused so far`);
    }, 5_000);
    this.statusTimer.unref();
  }

  private resume(): void {
    this.refusing = false;
    clearInterval(this.statusTimer);
    this.statusTimer = undefined;
    const s = Math.round((performance.now() - this.refusedSince) / 100) / 10;
    this.log(`run records: backlog down to ${this.unwritten}: accepting infer requests again after ${s} s (${this.refusedCount} refused)`);
  }

  private retryAfterSeconds(): number {
    const over = Math.max(1, this.unwritten - this.lowWater);
    const rate = this.lastRate > 0 ? this.lastRate : 0;
    return rate > 0 ? Math.min(30, Math.max(1, Math.ceil(over / rate))) : 1;
  }

  /** Read every segment an earlier process left, and queue its records for the sink. */
  private async replay(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const names = (await readdir(this.dir)).filter((n) => n.endsWith(SEGMENT_SUFFIX)).sort();
    let records = 0;
    let damaged = 0;
    for (const name of names) {
      const seq = Number.parseInt(name, 10);
      if (Number.isFinite(seq)) this.nextSegment = Math.max(this.nextSegment, seq + 1);
      const seg: Segment = { seq, path: join(this.dir, name), bytes: 0, unsettled: 0, syncs: new Set() };
      const text = await readFile(seg.path, 'utf8');
      seg.bytes = Buffer.byteLength(text);
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const rec = parseRecord(line);
        // A kill during a write leaves at most a torn last line, whose request never got its answer.
        if (!rec) { damaged++; continue; }
        const entry: Entry = { id: rec.id, pipeline: rec.pipeline, startedAt: rec.startedAt, line: `${line}\n`, bytes: Buffer.byteLength(line) + 1, segment: seg };
        seg.unsettled++;
        records++;
        this.enter(entry);
      }
      if (seg.unsettled === 0) await this.remove(seg);
    }
    if (records || damaged) {
      this.log(`run records: replaying ${records} from the journal in ${this.dir} to DynamoDB${damaged ? ` (${damaged} torn lines skipped)` : ''}`);
    }
    this.pump();
  }
}

function parseRecord(line: string): RunRecord | undefined {
  try {
    const v = JSON.parse(line) as Partial<RunRecord>;
    if (typeof v.id === 'string' && typeof v.pipeline === 'string' && typeof v.startedAt === 'string') return v as RunRecord;
  } catch {
    // torn
  }
  return undefined;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
