import { describe, expect, it } from 'vitest';
import { PrometheusMetrics } from '../../src/observability/metrics.js';
import { parseExposition } from './prometheus-text.js';

async function scrape(m: PrometheusMetrics) {
  return parseExposition((await m.scrape()).body);
}

describe('PrometheusMetrics, the Triton-named series', () => {
  it('counts a request refused before a version was chosen against the version the pipeline last served', async () => {
    const m = new PrometheusMetrics({ processMetrics: false });
    m.requestEnded({ pipeline: 'demo', version: '3', httpStatus: 200, durationMs: 2, items: 4 });
    // Unloaded since: the 503 knows no version of its own.
    m.requestEnded({ pipeline: 'demo', version: '', httpStatus: 503, durationMs: 1, error: 'not_ready' });
    const text = await scrape(m);
    expect(text.find('nv_inference_request_success', { model: 'demo' }).map((s) => s.labels.version)).toEqual(['3']);
    expect(text.find('nv_inference_count', { model: 'demo', version: '' })).toEqual([]);
    expect(text.value('nv_inference_request_failure', { model: 'demo', version: '3' })).toBe(1);
    expect(text.value('nv_inference_count', { model: 'demo', version: '3' })).toBe(4);
  });

  it("keeps the empty version for a pipeline that never served one (it failed to load)", async () => {
    const m = new PrometheusMetrics({ processMetrics: false });
    m.requestEnded({ pipeline: 'broken', version: '', httpStatus: 503, durationMs: 1, error: 'not_ready' });
    expect((await scrape(m)).value('nv_inference_request_failure', { model: 'broken', version: '' })).toBe(1);
  });
});
