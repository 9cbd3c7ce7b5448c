import { randomUUID } from 'node:crypto';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) and the AWS X-Ray
 * trace header, as plain strings: what arrives on a request, what crosses to
 * a stage (worker process or Lambda), and what goes back to the caller. No
 * OpenTelemetry here, so a server with tracing off reads and writes trace
 * ids without loading or building anything of the SDK.
 */

/** The parts of a `traceparent` header. */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero: the caller's span. */
  spanId: string;
  /** Trace flags; bit 0 is "sampled". */
  flags: number;
}

/** The context a stage call carries across a process boundary (the worker protocol, the Lambda payload). */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string;
}

/** Where a request's trace came from: continued from the caller, joined from X-Ray, or started here. */
export type TraceOrigin = 'traceparent' | 'xray' | 'new';

/** The trace a request belongs to, before any span exists. */
export interface InboundTrace {
  traceId: string;
  /** The caller's span, when it sent one (traceparent, or X-Ray's Parent). */
  parentSpanId?: string;
  /** Whether the caller sampled the trace (flags bit 0); false when it said nothing. */
  sampled: boolean;
  tracestate?: string;
  origin: TraceOrigin;
}

export const SAMPLED = 0x01;

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
/** The spec's bound on tracestate: 32 list members, and 512 characters are all a vendor must propagate. */
const TRACESTATE_MAX_CHARS = 512;

/**
 * A `traceparent` header's parts, or undefined for a header the spec says to
 * ignore (then a new trace starts): version ff, all-zero ids, and, for
 * version 00, anything after the flags. A later version is read by its
 * version-00 prefix, as the spec asks.
 */
export function parseTraceparent(header: string | undefined | null): TraceParent | undefined {
  if (!header) return undefined;
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${flags.toString(16).padStart(2, '0')}`;
}

/** The tracestate to pass on, or undefined for one too long or malformed to trust (the spec allows dropping it). */
export function cleanTracestate(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const v = header.trim();
  if (v === '' || v.length > TRACESTATE_MAX_CHARS || !/^[\x20-\x7e]+$/.test(v)) return undefined;
  return v;
}

/**
 * The trace of an X-Ray header (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`):
 * X-Ray's root is an 8-hex epoch and a 24-hex random part, which together are
 * the 32-hex W3C trace id, so spans exported with it land in the same trace.
 */
export function traceFromXRay(header: string | undefined | null): { traceId: string; parentSpanId?: string; sampled: boolean } | undefined {
  if (!header) return undefined;
  let root: string | undefined;
  let parent: string | undefined;
  let sampled = false;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 'Root') root = value;
    else if (key === 'Parent') parent = value.toLowerCase();
    else if (key === 'Sampled') sampled = value === '1';
  }
  const m = root ? /^1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})$/.exec(root) : null;
  if (!m) return undefined;
  const traceId = `${m[1]}${m[2]}`.toLowerCase();
  if (traceId === ZERO_TRACE) return undefined;
  const out: { traceId: string; parentSpanId?: string; sampled: boolean } = { traceId, sampled };
  if (parent && /^[0-9a-f]{16}$/.test(parent) && parent !== ZERO_SPAN) out.parentSpanId = parent;
  return out;
}

/**
 * The trace a request joins: its `traceparent` (with `tracestate`) when it
 * has a valid one, else the X-Ray header of the request or of the host
 * (Lambda's `_X_AMZN_TRACE_ID`), else a new trace.
 */
export function inboundTrace(headers: { traceparent?: string | null; tracestate?: string | null; xray?: (string | null | undefined)[] }): InboundTrace {
  const tp = parseTraceparent(headers.traceparent);
  if (tp) {
    const out: InboundTrace = { traceId: tp.traceId, parentSpanId: tp.spanId, sampled: (tp.flags & SAMPLED) !== 0, origin: 'traceparent' };
    const state = cleanTracestate(headers.tracestate);
    if (state !== undefined) out.tracestate = state;
    return out;
  }
  for (const h of headers.xray ?? []) {
    const x = traceFromXRay(h);
    if (x) return { ...x, origin: 'xray' };
  }
  return { traceId: newTraceId(), sampled: false, origin: 'new' };
}

/** A random trace id: a UUID's 122 random bits (Node caches its entropy, so this costs no syscall per request). */
export function newTraceId(): string {
  const u = randomUUID();
  return u.slice(0, 8) + u.slice(9, 13) + u.slice(14, 18) + u.slice(19, 23) + u.slice(24);
}

/** A random span id: 16 hex digits of a UUID's random part. */
export function newSpanId(): string {
  const u = randomUUID();
  return u.slice(19, 23) + u.slice(24);
}

/** A carrier read off the wire, or undefined when it is missing or not a valid traceparent (the call then runs untraced). */
export function readCarrier(value: unknown): TraceCarrier | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { traceparent, tracestate } = value as { traceparent?: unknown; tracestate?: unknown };
  if (typeof traceparent !== 'string' || !parseTraceparent(traceparent)) return undefined;
  const state = typeof tracestate === 'string' ? cleanTracestate(tracestate) : undefined;
  return state === undefined ? { traceparent } : { traceparent, tracestate: state };
}
