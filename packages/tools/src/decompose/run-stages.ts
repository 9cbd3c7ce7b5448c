/**
 * Runs stage models one after another in ONNX Runtime, each fed by name from
 * the graph inputs and from what earlier stages produced — the pipeline's
 * wiring without the pipeline — and times them.
 */
import * as ort from 'onnxruntime-node';

export interface RunnableStage {
  name: string;
  /** Model bytes or a file path. */
  model: Uint8Array | string;
  inputs: readonly { name: string }[];
}

export interface TimedRun {
  outputs: Record<string, ort.Tensor>;
  /** Median wall time of one run per stage, in stage order. */
  stageMs: number[];
}

export interface TimingOptions {
  /** Timed runs per stage after one untimed warm-up run (default 5). */
  runs?: number;
  /** Intra-op threads per session (default 1, as a stage instance runs by default). */
  threads?: number;
}

function sessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  return { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
}

async function createSession(model: Uint8Array | string, threads: number): Promise<ort.InferenceSession> {
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, sessionOptions(threads))
    : ort.InferenceSession.create(model, sessionOptions(threads));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Runs once and returns the median over `runs` more. */
async function timeRun(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, runs: number): Promise<{ out: ort.InferenceSession.ReturnType; ms: number }> {
  let out = await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    out = await session.run(feeds);
    times.push(performance.now() - t0);
  }
  return { out, ms: times.length ? median(times) : 0 };
}

/** Chains the stages on `feeds`; every tensor any stage made is in `outputs`. */
export async function runStages(stages: readonly RunnableStage[], feeds: Record<string, ort.Tensor>, opts: TimingOptions = {}): Promise<TimedRun> {
  const env: Record<string, ort.Tensor> = { ...feeds };
  const stageMs: number[] = [];
  for (const s of stages) {
    const session = await createSession(s.model, opts.threads ?? 1);
    try {
      const stageFeeds = Object.fromEntries(s.inputs.map((i) => [i.name, env[i.name]]));
      const { out, ms } = await timeRun(session, stageFeeds, opts.runs ?? 0);
      Object.assign(env, out);
      stageMs.push(ms);
    } finally {
      await session.release();
    }
  }
  return { outputs: env, stageMs };
}

/** Median time of the whole model on `feeds`, for comparison with the sum of its stages. */
export async function timeModel(model: Uint8Array | string, feeds: Record<string, ort.Tensor>, opts: TimingOptions = {}): Promise<number> {
  const session = await createSession(model, opts.threads ?? 1);
  try {
    return (await timeRun(session, feeds, opts.runs ?? 5)).ms;
  } finally {
    await session.release();
  }
}
