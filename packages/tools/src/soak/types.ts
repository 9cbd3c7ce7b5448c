/** One phase of the reliability suite and what it saw. */
export interface PhaseResult {
  name: string;
  /** What the phase did, in a few words (for the table). */
  what: string;
  requests: number;
  /** HTTP status -> count; -1: connection refused (the gateway was down), 0: cut off mid-request. */
  statuses: Record<number, number>;
  /** 200 answers whose numbers were not the demo's. */
  wrong: number;
  /** Run ids of answered requests looked up afterwards, and how many of them had no record. */
  recordsChecked: number;
  recordsLost: number;
  /** Gateway exits nobody asked for. */
  crashes: number;
  /** 5xx answers to requests that were the client's fault (the fuzzer's). */
  serverErrorsForClientErrors: number;
  /** Longest a /v2/health/live probe waited for its answer during the phase (event-loop stall, plus HTTP). */
  maxStallMs: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  notes: string[];
}

export interface SoakOptions {
  /** Repository root (bin/ensemble.mjs and models/demo live there). */
  root: string;
  /** Seconds of load per phase (default 15; the sustained phase takes twice as long). */
  seconds?: number;
  /** Concurrency of the sustained phase (default 64). */
  concurrency?: number;
  /** Malformed requests the fuzzer sends (default 400, at least 300). */
  fuzz?: number;
  /** Where the markdown table goes (a marked block is replaced). */
  out?: string;
  log?: (line: string) => void;
}
