/**
 * An example observer module: one line per run slower than `threshold_ms`
 * (default 1000), with where its time went, and one per monitor finding.
 * Name it in a manifest:
 *
 *   observers:
 *     - module: observers/slow-requests.ts
 *       options: { threshold_ms: 250, file: slow-runs.log }
 *
 * or for every pipeline: `ensemble serve --observer models/demo/observers/slow-requests.ts`.
 * Without `file` the lines go to stderr.
 */
import { appendFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ObserverModule, RunRecord } from '@ensemble/core';

const observer: ObserverModule = {
  create({ options, dir }) {
    const threshold = typeof options.threshold_ms === 'number' ? options.threshold_ms : 1000;
    const file = typeof options.file === 'string' ? resolve(dir, options.file) : undefined;
    // Synchronous and small: observers run on the request path, and a line must not be lost to a crash.
    const write = (line: string) => (file ? appendFileSync(file, `${line}\n`) : process.stderr.write(`${line}\n`));
    return {
      requestEnded({ record }) {
        if (!record || record.durationMs < threshold) return;
        write(`slow run ${record.id} ${record.pipeline} v${record.version}: ${record.durationMs} ms, HTTP ${record.httpStatus}; ${breakdown(record)}`);
      },
      finding(f) {
        write(`finding in run ${f.runId} ${f.pipeline}: ${f.tensor} ${f.rule} (${f.action}): ${f.message}`);
      },
    };
  },
};

function breakdown(r: RunRecord): string {
  return r.stages.map((s) => `${s.stage} queue ${s.queueWaitMs.toFixed(1)} ms compute ${s.computeMs.toFixed(1)} ms`).join(', ') || 'no stage ran';
}

export default observer;
