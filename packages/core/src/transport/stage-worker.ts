import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { OnnxRuntime } from '../runtime/onnx.js';
import type { BatchInput, StageBatching } from '../runtime/onnx.js';
import type { BatchResult, StageRuntime } from '../runtime/types.js';
import type { Item, Tensor } from '../tensor/types.js';
import { DATA_FD, type ColocatedInit, type FromWorker, type ItemAnswer, type ResultHeader, type RunHeader, type ToWorker } from './worker-protocol.js';
import type { OnnxStage } from '../manifest/types.js';
import { FrameReader, PayloadWriter, writeFrame, type Frame } from './frames.js';
import { addTensor, readGroup, type TensorMeta } from './tensor-frames.js';
import { createOnnxRuntime, stageBatching } from '../runtime/onnx.js';
import { EnsembleError } from '../errors.js';
import { markUsage, usageSince } from '../runtime/process-usage.js';
import { flushTracing, startTracing } from '../observability/tracing.js';
import { endStageRunSpan, startStageRunSpan } from '../observability/spans.js';
import { setStageModuleLoader } from '../runtime/function.js';
import { loadColocatedStages } from '../placement/colocated.js';

/**
 * One stage instance in its own process with its own ONNX Runtime session, so
 * `instances` sessions of a stage really run at once and a crash or hang takes
 * down one batch, not the gateway. (Not a worker thread: terminating a thread
 * inside a native session.run aborts the whole process.)
 *
 * Batches come on the data pipe as frames. Each read lands where its bytes
 * belong (the socket's `onread` buffer is the frame under way), so a batch's
 * tensors are read from the kernel straight into one buffer, in which items
 * of one shape already are the batch tensor session.run takes as is; the
 * outputs go back whole, written from ONNX Runtime's arrays.
 */
if (!process.send) throw new Error('stage-worker must be started with an IPC channel (child_process.fork)');
const send = (m: FromWorker) => process.send!(m);
// The parent going away (even by SIGKILL) closes the channel: don't linger as an orphan, but send the spans
// this worker still holds first (bounded: a collector that does not answer must not keep it alive).
const exitAfterFlush = () => {
  const bounded = setTimeout(() => process.exit(0), 2_000);
  bounded.unref();
  void flushTracing().finally(() => process.exit(0));
};
process.on('disconnect', exitAfterFlush);
let runtime: OnnxRuntime | undefined;
let batching: StageBatching | undefined;
let stageName = '';
let threads = 1;
/** The stage's session with one intra-op thread, for batches the pool marks narrow; made on the first one. */
let narrowSession: (() => Promise<OnnxRuntime>) | undefined;
/**
 * With co-located function stages (placement/colocated.ts): their modules,
 * loaded once for each context (a pipeline sharing this worker) as the pool
 * numbers them, each a wrapper for a session; and what the session's runs of
 * the batch under way cost, summed (a batch may run the session once per
 * pre-processed shape).
 */
let contexts: Map<number, Promise<Wrap>> | undefined;
type Wrap = (rt: StageRuntime) => StageRuntime;
const sessionRuns = { ms: 0, cpuMs: 0 };

function loadContext(c: ColocatedInit, stage: OnnxStage): Promise<Wrap> {
  const loading = loadColocatedStages(c.manifest, stage, c.group);
  loading.catch(() => undefined);
  return loading;
}
let initStage: OnnxStage | undefined;
/**
 * Function stage modules load with `require`: this process runs tsx's
 * CommonJS hook only (stage-worker-entry.cjs), which compiles a TypeScript
 * module's imports to `require`. An ES module that cannot be required (top-level
 * await) is imported instead.
 */
const requireFile = createRequire(join(process.cwd(), 'stage-worker'));
function loadModule(file: string): Promise<unknown> {
  try {
    return Promise.resolve(requireFile(file));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE') return import(pathToFileURL(file).href);
    throw e;
  }
}

/**
 * Run frames of 1 MB and more land in one buffer kept from batch to batch: a
 * fresh one would cost a page fault for every 4 KB of it on each batch (the
 * pool's glibc settings map and unmap large blocks each time). A batch at a
 * time comes, and nothing of its inputs outlives its answer: the next frame
 * is written only once the pool has read that answer whole.
 */
const REUSE_FROM = 1 << 20;
let spare: Uint8Array | undefined;
let spareTaken = false;
function payloadBuffer(bytes: number): Uint8Array {
  if (bytes < REUSE_FROM || spareTaken) return Buffer.allocUnsafeSlow(bytes);
  if (!spare || spare.byteLength < bytes) spare = Buffer.allocUnsafeSlow(bytes);
  spareTaken = true;
  return spare.subarray(0, bytes);
}

const reader = new FrameReader<RunHeader>({
  payloadBuffer,
  onFrame: (f) => { void run(f).finally(() => { if (spare && f.payload.buffer === spare.buffer) spareTaken = false; }); },
  // The pool writes nothing but frames: a stream that is not one cannot be answered, and the pool replaces a worker that exits.
  onError: (e) => { console.error(`[ensemble] stage worker: ${e.message}`); process.exit(70); },
});
// `onread` (Node's own option, documented with socket.connect and honoured by the constructor since Node 12;
// @types/node lists it for connect only): after each read Node asks `buffer` where the next one goes.
const onread: OnReadOpts = { buffer: () => reader.readTarget(), callback: (n: number) => { reader.commit(n); return true; } };
const data = new Socket({ fd: DATA_FD, readable: true, writable: true, onread } as SocketConstructorOpts);
// A pool that went away mid-write: the IPC channel's disconnect ends this process.
data.on('error', () => undefined);

function answer(header: ResultHeader, payload?: PayloadWriter): void {
  writeFrame(data, header, payload);
}

async function run(frame: Frame<RunHeader>): Promise<void> {
  const h = frame.header;
  if (!runtime || !batching) { answer({ type: 'error', id: h.id, message: 'worker not initialised' }); return; }
  const span = startStageRunSpan(stageName, h.trace);
  const t0 = performance.now();
  const mark = markUsage();
  try {
    if (contexts) {
      if (h.colocated) contexts.set(h.context ?? 0, loadContext(h.colocated, initStage!));
      const wrap = contexts.get(h.context ?? 0);
      if (!wrap) throw new EnsembleError(`no co-located stages for context ${h.context}`);
      await runGrouped(frame, t0, mark, h.context ?? 0, await wrap);
      endStageRunSpan(span, { outcomes: new Array<undefined>(h.n), computeMs: sessionRuns.ms });
      return;
    }
    const inputs: Record<string, BatchInput> = {};
    for (const [name, meta] of Object.entries(h.inputs)) inputs[name] = readGroup(frame.payload, meta, `input '${name}'`);
    const feeds = batching.stack(inputs);
    const session = h.narrow === true && narrowSession ? await narrowSession() : runtime;
    const before = markUsage();
    const out = await session.runBatch(feeds, h.n);
    const computeCpuMs = usageSince(before).cpuMs;
    const payload = new PayloadWriter();
    const outputs: Record<string, TensorMeta> = {};
    for (const [name, t] of Object.entries(out.outputs)) outputs[name] = addTensor(payload, t as Tensor);
    const usage = usageSince(mark);
    const servedMs = performance.now() - t0;
    endStageRunSpan(span, { outcomes: new Array<undefined>(h.n), computeMs: out.computeMs });
    answer({
      type: 'result', id: h.id, outputs,
      computeMs: out.computeMs, computeCpuMs, cpuMs: usage.cpuMs, peakRssBytes: usage.peakRssBytes,
      servedMs, serializeMs: Math.max(0, servedMs - out.computeMs), readMs: frame.readMs, threads: session === runtime ? threads : 1,
    }, payload);
  } catch (e) {
    endStageRunSpan(span, undefined, e);
    answer({ type: 'error', id: h.id, message: e instanceof Error ? e.message : String(e), code: e instanceof EnsembleError ? e.code : 'stage_failed' });
  }
}

/**
 * A batch through the co-located stages and the session: the frame's groups
 * become the items (a per-request input, sent once, is every item's), each
 * item is answered on its own, and an item a stage failed on fails alone.
 */
async function runGrouped(frame: Frame<RunHeader>, t0: number, mark: ReturnType<typeof markUsage>, context: number, wrap: Wrap): Promise<void> {
  const h = frame.header;
  const items: Item[] = Array.from({ length: h.n }, () => ({}));
  for (const [name, meta] of Object.entries(h.inputs)) {
    const { parts } = readGroup(frame.payload, meta, `input '${name}'`);
    if (parts.length !== h.n && parts.length !== 1) throw new EnsembleError(`input '${name}': ${parts.length} tensors for ${h.n} items`);
    for (let i = 0; i < h.n; i++) items[i][name] = parts.length === 1 ? parts[0] : parts[i];
  }
  const session = h.narrow === true && narrowSession ? await narrowSession() : runtime!;
  sessionRuns.ms = 0;
  sessionRuns.cpuMs = 0;
  const result: BatchResult = await groupFor(session, context, wrap).run(items);
  const payload = new PayloadWriter();
  const answers = result.outcomes.map((o): ItemAnswer => {
    if (!o.ok) return o.code ? { ok: false, error: o.error, code: o.code } : { ok: false, error: o.error };
    const outputs: Record<string, TensorMeta> = {};
    for (const [name, t] of Object.entries(o.items[0])) outputs[name] = addTensor(payload, t);
    return { ok: true, outputs };
  });
  const usage = usageSince(mark);
  const servedMs = performance.now() - t0;
  answer({
    type: 'result', id: h.id, outputs: {}, items: answers,
    computeMs: result.computeMs, sessionMs: sessionRuns.ms, computeCpuMs: sessionRuns.cpuMs, cpuMs: usage.cpuMs, peakRssBytes: usage.peakRssBytes,
    colocatedCpuMs: Math.max(0, usage.cpuMs - sessionRuns.cpuMs), colocated: result.colocated,
    servedMs, serializeMs: Math.max(0, servedMs - result.computeMs), readMs: frame.readMs, threads: session === runtime ? threads : 1,
  }, payload);
}

/** Each session's co-located runtime per context, made on its first batch; its session runs add to `sessionRuns`. */
const groups = new Map<OnnxRuntime, Map<number, StageRuntime>>();
function groupFor(session: OnnxRuntime, context: number, wrap: Wrap): StageRuntime {
  const own = groups.get(session) ?? groups.set(session, new Map()).get(session)!;
  let g = own.get(context);
  if (!g) {
    const timed: StageRuntime = {
      close: () => session.close(),
      async run(items: Item[]) {
        const before = markUsage();
        const r = await session.run(items);
        sessionRuns.ms += r.computeMs;
        sessionRuns.cpuMs += usageSince(before).cpuMs;
        return r;
      },
    };
    g = wrap(timed);
    own.set(context, g);
  }
  return g;
}

process.on('message', (msg: ToWorker) => {
  if (msg.type !== 'init') return;
  const t0 = performance.now();
  let sessionMs = 0;
  const session = createOnnxRuntime({ stage: msg.stage, modelPath: msg.modelPath }).then((rt) => { sessionMs = performance.now() - t0; return rt; });
  // The co-located stages' modules load beside the session.
  let loaded: Promise<unknown> = Promise.resolve();
  if (msg.colocated) {
    setStageModuleLoader(loadModule);
    initStage = msg.stage;
    const made = new Map(msg.colocated.map((c, i) => [i, loadContext(c, msg.stage)]));
    loaded = Promise.all(made.values()).then(() => { contexts = made; });
  }
  // Tracing (when an OTLP endpoint is set in the environment the pool passed on) is up before the first batch.
  Promise.all([session, startTracing('ensemble'), loaded]).then(
    ([rt, traced]) => {
      runtime = rt;
      batching = stageBatching(msg.stage);
      stageName = msg.stage.name;
      threads = msg.stage.scale.threads;
      if (threads > 1) {
        let made: Promise<OnnxRuntime> | undefined;
        const one = { ...msg.stage, scale: { ...msg.stage.scale, threads: 1 } };
        // A session that cannot be made (memory) leaves the batch to the stage's own.
        narrowSession = () => (made ??= createOnnxRuntime({ stage: one, modelPath: msg.modelPath }).catch(() => rt));
      }
      // The pool stops a worker with SIGTERM: a tracing worker sends its spans first (a hung one gets SIGKILL).
      if (traced) process.once('SIGTERM', exitAfterFlush);
      send({ type: 'ready', initMs: performance.now() - t0, sessionMs });
    },
    (e: unknown) => send({ type: 'init-error', message: e instanceof Error ? e.message : String(e) }),
  );
});
