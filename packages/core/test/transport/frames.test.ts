import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { FrameReader, PayloadWriter, PREFIX_BYTES, writeFrame, type Frame } from '../../src/transport/frames.js';
import { addGroup, addTensor, readGroup, readTensor, type GroupMeta, type TensorMeta } from '../../src/transport/tensor-frames.js';
import { WorkerPoolTransport } from '../../src/transport/worker-pool.js';
import { S3WeightStore } from '../../src/storage/s3-weights.js';
import { ensureBucket } from '@ensemble/tools/local/bucket.js';
import { pushObject } from '@ensemble/tools/pipelines/upload.js';
import { loadManifest } from '../../src/manifest/load.js';
import type { Manifest } from '../../src/manifest/types.js';
import type { Datatype, Item, Tensor } from '../../src/tensor/types.js';
import { allocate } from '../../src/tensor/datatypes.js';
import { toHalfBits } from '../../src/tensor/fp16.js';
import { StageError } from '../../src/errors.js';
import { identityModel, ORT_DATATYPES, scaleModel, writeModel } from '../fixtures/models.js';
import { startLocal, tempDir, type Local } from '../storage/local.js';
import { removePipelines, writePipeline } from '../manifest/helpers.js';

const utf8 = new TextEncoder();

/** `n` elements of `dt` that differ from each other and reach the type's edges. */
function sample(dt: Datatype, n: number, seed: number): Tensor['data'] {
  const data = allocate(dt, n);
  for (let i = 0; i < n; i++) {
    const k = i + seed * 7;
    switch (dt) {
      case 'BYTES': (data as Uint8Array[])[i] = utf8.encode(i % 3 === 0 ? '' : `élément ${k} ✓`); break;
      case 'BOOL': (data as Uint8Array)[i] = k % 2; break;
      case 'FP16': (data as Uint16Array)[i] = toHalfBits(k % 2 ? -k / 8 : 65504 - k); break;
      case 'INT64': (data as BigInt64Array)[i] = k % 2 ? -(2n ** 63n) + BigInt(k) : 2n ** 63n - 1n - BigInt(k); break;
      case 'UINT64': (data as BigUint64Array)[i] = 2n ** 64n - 1n - BigInt(k); break;
      case 'FP32': case 'FP64': (data as Float32Array)[i] = k % 2 ? -k / 3 : k * 1e30; break;
      default: (data as Uint8Array)[i] = k * 37; // wraps to the type's range
    }
  }
  return data;
}

function plain(t: Tensor): { datatype: string; shape: number[]; data: unknown[] } {
  const data = Array.isArray(t.data) ? t.data.map((b) => Array.from(b)) : Array.from(t.data as ArrayLike<unknown>);
  return { datatype: t.datatype, shape: t.shape, data };
}

/** What writeFrame wrote, as the chunks a real stream handed on. */
async function written(header: unknown, payload?: PayloadWriter): Promise<Uint8Array> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  writeFrame(out, header, payload);
  out.end();
  await new Promise((r) => out.once('end', r));
  return Buffer.concat(chunks);
}

function readAll<H>(bytes: Uint8Array, cut: (at: number) => number): Frame<H>[] {
  const frames: Frame<H>[] = [];
  const reader = new FrameReader<H>({ onFrame: (f) => frames.push(f), onError: (e) => { throw e; } });
  for (let at = 0; at < bytes.byteLength;) {
    const n = Math.max(1, Math.min(cut(at), bytes.byteLength - at));
    reader.push(bytes.subarray(at, at + n));
    at += n;
  }
  expect(reader.pending).toBe(0);
  return frames;
}

/** The readTarget()/commit() way, as a socket's onread feeds it: each read at most what the target holds. */
function readInPlace<H>(bytes: Uint8Array, most: number): Frame<H>[] {
  const frames: Frame<H>[] = [];
  const reader = new FrameReader<H>({ onFrame: (f) => frames.push(f), onError: (e) => { throw e; } });
  for (let at = 0; at < bytes.byteLength;) {
    const target = reader.readTarget();
    const n = Math.min(target.byteLength, most, bytes.byteLength - at);
    target.set(bytes.subarray(at, at + n));
    reader.commit(n);
    at += n;
  }
  return frames;
}

interface Header { groups: Record<string, GroupMeta>; single: Record<string, TensorMeta> }

describe('frames', () => {
  it('round-trips every datatype, as groups of items and as single tensors, however the bytes are cut', async () => {
    const payload = new PayloadWriter();
    const header: Header = { groups: {}, single: {} };
    const sent: Record<string, Tensor[]> = {};
    for (const dt of ORT_DATATYPES) {
      // Odd element counts, so every segment after one of 1-byte elements starts unaligned unless the writer pads it.
      const parts: Tensor[] = [0, 1, 2].map((i) => ({ datatype: dt, shape: [3, 1], data: sample(dt, 3, i) }));
      sent[dt] = parts;
      header.groups[dt] = addGroup(payload, parts, dt);
      header.single[dt] = addTensor(payload, { datatype: dt, shape: [5], data: sample(dt, 5, 9) });
    }
    const bytes = await written(header, payload);
    let seed = 1;
    const random = () => { seed = (seed * 16807) % 2147483647; return 1 + (seed % 97); };
    const ways = { 'one byte a read': readAll<Header>(bytes, () => 1), 'random cuts': readAll<Header>(bytes, random), whole: readAll<Header>(bytes, () => bytes.byteLength), 'in place, 7 bytes a read': readInPlace<Header>(bytes, 7), 'in place': readInPlace<Header>(bytes, 1 << 20) };
    for (const [way, frames] of Object.entries(ways)) {
      expect(frames, way).toHaveLength(1);
      const [{ header: h, payload: p }] = frames;
      for (const dt of ORT_DATATYPES) {
        const g = readGroup(p, h.groups[dt], dt);
        expect(g.parts.map(plain), `${way} ${dt}`).toEqual(sent[dt].map(plain));
        // Items of one shape come out already stacked, as a view of the payload (no copy).
        expect(g.stacked?.shape).toEqual([3, 3, 1]);
        if (dt !== 'BYTES') expect((g.stacked!.data as Uint8Array).buffer).toBe(p.buffer);
        expect(plain(readTensor(p, h.single[dt], dt))).toEqual(plain({ datatype: dt, shape: [5], data: sample(dt, 5, 9) }));
      }
    }
  });

  it('reads frames that share a read, and a frame split anywhere, including inside its prefix and header', async () => {
    const one = await written({ n: 1 });
    const payload = new PayloadWriter();
    payload.add(Uint8Array.of(1, 2, 3));
    const two = await written({ n: 2 }, payload);
    const both = Buffer.concat([one, two, one]);
    for (const cutAt of [1, PREFIX_BYTES - 1, PREFIX_BYTES + 2, one.byteLength, one.byteLength + PREFIX_BYTES + 3, both.byteLength - 1]) {
      const frames = readAll<{ n: number }>(both, (at) => (at === 0 ? cutAt : both.byteLength));
      expect(frames.map((f) => [f.header.n, Array.from(f.payload)])).toEqual([[1, []], [2, [1, 2, 3]], [1, []]]);
    }
  });

  it('holds a frame cut short as pending and tells nothing; says so for bytes that are not a frame', async () => {
    const payload = new PayloadWriter();
    payload.add(new Uint8Array(1000).fill(7));
    const bytes = await written({ n: 1 }, payload);
    const frames: Frame[] = [];
    const errors: Error[] = [];
    const reader = new FrameReader({ onFrame: (f) => frames.push(f), onError: (e) => errors.push(e) });
    reader.push(bytes.subarray(0, bytes.byteLength - 10));
    expect(frames).toHaveLength(0);
    expect(reader.pending).toBe(bytes.byteLength - 10);

    const garbled = new FrameReader({ onFrame: (f) => frames.push(f), onError: (e) => errors.push(e) });
    garbled.push(utf8.encode('{"type":"run","id":1} and more text'));
    expect(frames).toHaveLength(0);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/data pipe: not a frame/)]);
  });

  it('refuses a group whose items disagree on datatype, and a region outside the payload', () => {
    const w = new PayloadWriter();
    expect(() => addGroup(w, [{ datatype: 'FP32', shape: [1], data: new Float32Array(1) }, { datatype: 'INT32', shape: [1], data: new Int32Array(1) }], "input 'x'"))
      .toThrow("input 'x': part 1 has datatype INT32, part 0 has FP32");
    expect(() => readTensor(new Uint8Array(8), { datatype: 'FP32', shape: [4], offset: 0, bytes: 16 }, 'y')).toThrow(/outside a payload of 8/);
    expect(() => readTensor(new Uint8Array(16), { datatype: 'FP32', shape: [3], offset: 0, bytes: 16 }, 'y')).toThrow(/16 bytes for 3 FP32 elements/);
  });
});

describe('frames through worker processes', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let local: Local;
  let manifest: Manifest;
  let pool: WorkerPoolTransport;
  const name = (dt: Datatype) => `id_${dt.toLowerCase()}`;

  beforeAll(async () => {
    tmp = await tempDir('frames');
    local = await startLocal(join(tmp.dir, 'data'));
    await ensureBucket(local.s3, 'weights');
    const stages: string[] = [];
    const push = async (key: string, bytes: Uint8Array) => {
      const m = writeModel(tmp.dir, key.replace('/', '_'), bytes);
      await pushObject({ s3: local.s3, bucket: 'weights', key, file: m.path });
      return m.sha256;
    };
    for (const dt of ORT_DATATYPES) {
      const sha = await push(`t/${name(dt)}.onnx`, identityModel(dt));
      stages.push(`  - { name: ${name(dt)}, kind: onnx, weights: { key: t/${name(dt)}.onnx, sha256: ${sha} }, inputs: { x: ${name(dt)}_in }, outputs: { y: ${name(dt)}_out } }`);
    }
    const idSha = await push('t/pad.onnx', identityModel('FP32'));
    stages.push(`  - { name: pad, kind: onnx, weights: { key: t/pad.onnx, sha256: ${idSha} }, inputs: { x: pad_in }, outputs: { y: pad_out }, batch: { max_size: 8, pad_axis: 0, pad_value: -1 } }`);
    const scaleSha = await push('t/triple.onnx', scaleModel(3, ['batch', 'n']));
    stages.push(`  - { name: triple, kind: onnx, weights: { key: t/triple.onnx, sha256: ${scaleSha} }, inputs: { x: big_in }, outputs: { y: big_out } }`);
    const ios = (suffix: string) => [...ORT_DATATYPES.map((dt) => `  - { name: ${name(dt)}_${suffix}, datatype: ${dt}, shape: [-1, 3] }`),
      `  - { name: pad_${suffix}, datatype: FP32, shape: [-1, 4] }`, `  - { name: big_${suffix}, datatype: FP32, shape: [-1, 4] }`];
    const { file } = await writePipeline(['name: frames', 'inputs:', ...ios('in'), 'outputs:', ...ios('out'), 'stages:', ...stages, ''].join('\n'));
    manifest = await loadManifest(file);
    pool = new WorkerPoolTransport(new S3WeightStore({ s3: local.s3, bucket: 'weights', cacheDir: join(tmp.dir, 'cache') }));
    await pool.load(manifest);
  }, 120_000);

  afterAll(async () => {
    await pool?.close();
    await local?.close();
    await removePipelines();
    await tmp?.cleanup();
  });

  it('every datatype goes to a worker and back unchanged, each item its own rows', async () => {
    for (const dt of ORT_DATATYPES) {
      const items: Item[] = [0, 1, 2].map((i) => ({ x: { datatype: dt, shape: [3], data: sample(dt, 3, i) } }));
      const r = await pool.invoke('frames', name(dt), items);
      const got = r.outcomes.map((o) => (o.ok ? plain(o.items[0].y) : o.error));
      expect(got, dt).toEqual(items.map((it) => plain(it.x)));
    }
  });

  it('pads items of different lengths along the pad axis in the worker', async () => {
    const items: Item[] = [[1, 2], [3, 4, 5, 6], [7]].map((v) => ({ x: { datatype: 'FP32', shape: [v.length], data: Float32Array.from(v) } }));
    const r = await pool.invoke('frames', 'pad', items);
    expect(r.outcomes.map((o) => (o.ok ? plain(o.items[0].y) : o.error))).toEqual([
      { datatype: 'FP32', shape: [4], data: [1, 2, -1, -1] },
      { datatype: 'FP32', shape: [4], data: [3, 4, 5, 6] },
      { datatype: 'FP32', shape: [4], data: [7, -1, -1, -1] },
    ]);
  });

  it('moves a batch many times a pipe buffer both ways, and splits the outputs into views of one buffer', async () => {
    // 4 items of 2 M floats: 32 MB out and 32 MB back, past any pipe or socket buffer. Twice, with other
    // values: the worker reads the second batch into the memory the first one used.
    const n = 2_000_000;
    for (const shift of [0, 5]) {
      const items: Item[] = [0, 1, 2, 3].map((i) => ({ x: { datatype: 'FP32', shape: [n], data: new Float32Array(n).map((_, j) => shift + i * 10 + (j % 1000)) } }));
      const r = await pool.invoke('frames', 'triple', items);
      r.outcomes.forEach((o, i) => {
        if (!o.ok) throw new Error(o.error);
        const y = o.items[0].y.data as Float32Array;
        expect(y.length).toBe(n);
        const at = (j: number) => 3 * (shift + i * 10 + (j % 1000));
        expect([y[0], y[999], y[1000], y[n - 1]]).toEqual([at(0), at(999), at(1000), at(n - 1)]);
      });
      const buffers = new Set(r.outcomes.map((o) => (o.ok ? (o.items[0].y.data as Float32Array).buffer : undefined)));
      expect(buffers.size).toBe(1);
      expect(r.transfer?.ipcMs).toBeGreaterThanOrEqual(0);
      expect(r.transfer?.serializeMs).toBeGreaterThan(0);
    }
  });

  it('a worker killed while its batch is still being written fails that batch only; the next one is served', async () => {
    const n = 4_000_000;
    const items: Item[] = [0, 1].map(() => ({ x: { datatype: 'FP32', shape: [n], data: new Float32Array(n).fill(1) } }));
    const [victim] = pool.workersOf('frames', 'triple');
    const inFlight = pool.invoke('frames', 'triple', items);
    // The invoke wrote its frame before returning: the pipe holds a fraction of 32 MB, the rest waits in the stream.
    await new Promise((r) => setImmediate(r));
    const pipe = victim.stdio[4] as unknown as { writableLength: number };
    expect(pipe.writableLength).toBeGreaterThan(0);
    victim.kill('SIGKILL');
    await expect(inFlight).rejects.toBeInstanceOf(StageError);
    await expect(inFlight).rejects.toThrow(/stage 'triple'.*exited/);
    const next = await pool.invoke('frames', 'triple', [{ x: { datatype: 'FP32', shape: [4], data: Float32Array.of(1, 2, 3, 4) } }]);
    expect(next.outcomes.map((o) => (o.ok ? Array.from(o.items[0].y.data as Float32Array) : o.error))).toEqual([[3, 6, 9, 12]]);
    expect(pool.workersOf('frames', 'triple')[0]).not.toBe(victim);
  });

  it('a batch whose items lack an input fails at once, without a worker', async () => {
    const err = await pool.invoke('frames', 'triple', [{ z: { datatype: 'FP32', shape: [1], data: Float32Array.of(1) } }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StageError);
    expect((err as Error).message).toBe("stage 'triple' failed: input 'x' missing from an item");
  });
});
