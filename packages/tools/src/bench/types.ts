import type { LatencySummary } from './stats.js';

/** One HTTP request the load generator sends (bodies are cycled through). */
export interface LoadRequest {
  /** Path and query on the target, e.g. `/v2/models/demo/infer`. */
  path: string;
  headers?: Record<string, string>;
  body: Uint8Array | string;
}

export interface LoadOptions {
  /** Base URL; only loopback addresses are accepted. */
  url: string;
  requests: LoadRequest[];
  /** Requests in flight at once (closed loop: each connection sends its next request when the last one answers). */
  concurrency: number;
  /** Stop after this many requests have been sent... */
  maxRequests: number;
  /** ...or after this long, whichever comes first. */
  maxDurationMs: number;
  /** Requests sent first and not counted (connections opened, JIT and caches warm). */
  warmupRequests?: number;
  /** One request's own deadline. Default 60 s. */
  requestTimeoutMs?: number;
}

export interface LoadResult {
  concurrency: number;
  /** Requests counted (warm-up excluded). */
  sent: number;
  /** Answered with a 2xx status. */
  ok: number;
  failed: number;
  /** From the first counted request sent to the last one answered. */
  durationMs: number;
  /** Successful requests per second. */
  throughput: number;
  /** Latency of the successful requests, in ms. */
  latency: LatencySummary;
  /** Status code (or 'error') -> count. */
  statuses: Record<string, number>;
  /** The first few failure messages, for the report. */
  errors: string[];
}

/** One line of the benchmark table. */
export interface BenchRow {
  scenario: string;
  /** What ran: 'ensemble', 'baseline (hand-written Hono)', '@gutenye/ocr-node (sequential)'... */
  system: string;
  /** Requests in flight; 1 for sequential runs. */
  concurrency: number;
  throughput: number;
  /** 'req/s', 'images/s', 'items/s'. */
  unit: string;
  p50Ms: number;
  p99Ms: number;
  /** How many requests the numbers are made of. */
  samples: number;
  failed: number;
  /** Character error rate, for OCR rows. */
  cer?: number;
  note?: string;
}

/** A target from the issue, checked against this run's numbers. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

export interface ScenarioResult {
  name: string;
  title: string;
  rows: BenchRow[];
  targets: TargetCheck[];
  /** Paragraphs for the markdown report (method, caveats, predicted vs measured). */
  notes: string[];
}

export interface BenchSettings {
  quick: boolean;
  /** Print progress lines. */
  log: (s: string) => void;
  /** Repository root: models/ lives under it. */
  root: string;
  /** Images in the job scenario's job (default 1,000; 100 with --quick). */
  jobImages?: number;
}
