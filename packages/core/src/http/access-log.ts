import type { Context, MiddlewareHandler } from 'hono';

/** What a handler knows about its request that the access line should carry. */
export interface RequestNote {
  runId?: string;
  pipeline?: string;
  /** Why nothing else records this request (e.g. an unknown model: no run record). */
  note?: string;
}

const notes = new WeakMap<Context, RequestNote>();

/** Adds to the access line of the request `c` is answering. */
export function noteRequest(c: Context, note: RequestNote): void {
  notes.set(c, { ...notes.get(c), ...note });
}

/**
 * One line per request, written once the response is ready:
 * `POST /v2/models/demo/infer 200 12.3ms run=<id> pipeline=demo`.
 * Built from a few fields, never from bodies: it runs on every request.
 */
export function accessLog(log: (line: string) => void): MiddlewareHandler {
  return async (c, next) => {
    const t0 = performance.now();
    try {
      await next();
    } finally {
      const ms = (performance.now() - t0).toFixed(1);
      const n = notes.get(c);
      let line = `${c.req.method} ${c.req.path} ${c.res.status} ${ms}ms`;
      if (n?.runId) line += ` run=${n.runId}`;
      if (n?.pipeline) line += ` pipeline=${n.pipeline}`;
      if (n?.note) line += ` (${n.note})`;
      log(line);
    }
  };
}
