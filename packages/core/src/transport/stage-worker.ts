import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import type { OnnxRuntime } from '../runtime/onnx.js';
import type { BatchInput, StageBatching } from '../runtime/onnx.js';
import type { Tensor } from '../tensor/types.js';
import { DATA_FD, type FromWorker, type ResultHeader, type RunHeader, type ToWorker } from './worker-protocol.js';
import { FrameReader, PayloadWriter, writeFrame, type Frame } from './frames.js';
import { addTensor, readGroup, type TensorMeta } from './tensor-frames.js';
import { createOnnxRuntime, stageBatching } from '../runtime/onnx.js';
import { EnsembleError } from '../errors.js';
import { markUsage, usageSince } from '../runtime/process-usage.js';
import { flushTracing, startTracing } from '../observability/tracing.js';
import { endStageRunSpan, startStageRunSpan } from '../observability/spans.js';
import { ColocatedWorker } from './colocated-worker.js';

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
/** With co-located function stages: they, and the sessions they run around. */
let colocated: ColocatedWorker | undefined;

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
    if (colocated) {
      const session = h.narrow === true && narrowSession ? await narrowSession() : runtime;
      const payload = new PayloadWriter();
      const { items, times } = await colocated.run(frame, session, payload);
      const usage = usageSince(mark);
      const servedMs = performance.now() - t0;
      endStageRunSpan(span, { outcomes: new Array<undefined>(h.n), computeMs: times.computeMs });
      answer({
        type: 'result', id: h.id, outputs: {}, items, ...times, cpuMs: usage.cpuMs, peakRssBytes: usage.peakRssBytes,
        colocatedCpuMs: Math.max(0, usage.cpuMs - times.computeCpuMs),
        servedMs, serializeMs: Math.max(0, servedMs - times.computeMs), readMs: frame.readMs, threads: session === runtime ? threads : 1,
      }, payload);
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

process.on('message', (msg: ToWorker) => {
  if (msg.type === 'context') {
    const id = msg.context.id;
    if (!colocated) { send({ type: 'context-error', id, message: 'this worker runs no co-located stages' }); return; }
    colocated.add(msg.context).then(
      () => send({ type: 'context-ready', id }),
      (e: unknown) => send({ type: 'context-error', id, message: e instanceof Error ? e.message : String(e) }),
    );
    return;
  }
  if (msg.type !== 'init') return;
  const t0 = performance.now();
  let sessionMs = 0;
  const session = createOnnxRuntime({ stage: msg.stage, modelPath: msg.modelPath }).then((rt) => { sessionMs = performance.now() - t0; return rt; });
  // The co-located stages' modules load beside the session. A context that cannot load fails its own batches;
  // the worker fails to start only when none loads (its first pipeline's load then fails, naming the reason).
  let loaded: Promise<unknown> = Promise.resolve();
  if (msg.colocated) {
    const c = new ColocatedWorker(msg.stage, stageBatching(msg.stage));
    loaded = Promise.allSettled(msg.colocated.map((x) => c.add(x))).then((r) => {
      const failed = r.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed && r.every((x) => x.status === 'rejected')) throw failed.reason;
      colocated = c;
    });
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
