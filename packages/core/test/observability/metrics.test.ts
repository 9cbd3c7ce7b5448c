import { describe, expect, it } from 'vitest';
import { PrometheusMetrics } from '../../src/observability/metrics.js';
import { parseExposition } from './prometheus-text.js';

async function scrape(m: PrometheusMetrics) {
  return parseExposition((await m.scrape()).body);
}

describe('PrometheusMetrics, the Triton-named series', () => {
  it('counts no request refused before a version was chosen: no model saw it, and no series has an empty version', async () => {
    const m = new PrometheusMetrics({ processMetrics: false });
    m.requestEnded({ pipeline: 'demo', version: '3', httpStatus: 200, durationMs: 2, items: 4 });
    // Unloaded since: the 503 knows no version (its status is in ensemble_http_responses_total).
    m.requestEnded({ pipeline: 'demo', version: '', httpStatus: 503, durationMs: 1, error: 'not_ready' });
    const text = await scrape(m);
    expect(text.find('nv_inference_request_success', { model: 'demo' }).map((s) => s.labels.version)).toEqual(['3']);
    expect(text.find('nv_inference_count', { model: 'demo', version: '' })).toEqual([]);
    expect(text.value('nv_inference_request_failure', { model: 'demo' })).toBe(0);
    expect(text.value('nv_inference_count', { model: 'demo', version: '3' })).toBe(4);
  });

  it('counts a zero-row request as a success with no inference and no execution, as /stats does', async () => {
    const m = new PrometheusMetrics({ processMetrics: false });
    m.requestEnded({ pipeline: 'demo', version: '1', httpStatus: 200, durationMs: 1, items: 0, computeMs: 0 });
    const text = await scrape(m);
    expect(text.value('nv_inference_request_success', { model: 'demo' })).toBe(1);
    expect(text.value('nv_inference_count', { model: 'demo' })).toBe(0);
    expect(text.value('nv_inference_exec_count', { model: 'demo' })).toBe(0);
  });
});
