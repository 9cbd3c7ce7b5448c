// A request form built from the model's metadata (GET /v2/models/{m}): one
// BYTES input takes a file sent as the raw body (its own Content-Type, as
// `curl --data-binary @page.png -H 'content-type: image/png'` would); tensor
// inputs take Open Inference Protocol JSON, prefilled with the right shape.

import { enc, request } from './api.js';
import { h } from './dom.js';

/**
 * @typedef {{ name: string, datatype: string, shape: number[] }} MetadataTensor
 * @typedef {{ name: string, inputs: MetadataTensor[], outputs: MetadataTensor[] }} ModelMetadata
 */

/** A JSON request with one item: every free dim (-1) set to 1, values that show the dtype. */
export function exampleRequest(meta) {
  return {
    inputs: meta.inputs.map((t) => {
      const shape = t.shape.map((d) => (d < 0 ? 1 : d));
      const n = shape.reduce((a, b) => a * b, 1);
      const data = Array.from({ length: n }, (_, i) => example(t.datatype, i));
      return { name: t.name, datatype: t.datatype, shape, data };
    }),
  };
}

function example(datatype, i) {
  if (datatype === 'BOOL') return i % 2 === 0;
  if (datatype === 'BYTES') return '';
  if (datatype.startsWith('FP')) return Math.round((i + 1) * 10) / 100;
  return i;
}

/** Raw body for a model whose only input is BYTES (an image). */
export function takesRawBody(meta) {
  return meta.inputs.length === 1 && meta.inputs[0].datatype === 'BYTES';
}

/**
 * @param {ModelMetadata} meta
 * @param {(runId: string) => void} opened called with the run id of a request that ran
 * @returns {HTMLElement}
 */
export function requestForm(meta, opened) {
  const status = h('p', { class: 'form-status', role: 'status' });
  const raw = takesRawBody(meta);
  const file = h('input', { type: 'file', name: 'file', accept: 'image/*,application/octet-stream' });
  const json = h('textarea', { name: 'body', rows: 8, spellcheck: 'false' });
  json.value = JSON.stringify(exampleRequest(meta), null, 1).replace(/\n\s+(?=[\d\-.tf"\]])/g, ' ');
  const submit = h('button', { type: 'submit', class: 'primary', text: 'Run inference' });
  const form = h('form', { class: 'request-form', 'data-model': meta.name }, [
    h('h3', { text: 'Send a request' }),
    raw
      ? h('label', {}, [`${meta.inputs[0].name} (sent as the raw body with the file's type): `, file])
      : h('label', { class: 'block' }, [`Open Inference Protocol JSON (inputs: ${meta.inputs.map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join('; ')})`, json]),
    h('div', {}, [submit]),
    status,
  ]);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let init;
    if (raw) {
      const f = /** @type {HTMLInputElement} */ (file).files?.[0];
      if (!f) { status.textContent = 'Choose a file first.'; return; }
      init = { method: 'POST', body: f, headers: { 'content-type': f.type || 'application/octet-stream' } };
    } else {
      try { JSON.parse(/** @type {HTMLTextAreaElement} */ (json).value); } catch (err) {
        status.textContent = `Not JSON: ${err instanceof Error ? err.message : String(err)}`;
        return;
      }
      init = { method: 'POST', body: /** @type {HTMLTextAreaElement} */ (json).value, headers: { 'content-type': 'application/json' } };
    }
    submit.setAttribute('disabled', '');
    status.textContent = 'Running…';
    try {
      const res = await request(`/v2/models/${enc(meta.name)}/infer`, init);
      const text = await res.text();
      const runId = res.headers.get('x-ensemble-run-id');
      if (runId) sessionStorage.setItem(`ensemble.response.${runId}`, JSON.stringify({ status: res.status, body: text.slice(0, 20000) }));
      if (!res.ok) {
        let msg = text;
        try { msg = JSON.parse(text).error ?? text; } catch { /* not JSON */ }
        status.textContent = `${res.status}: ${msg}`;
        if (runId) status.append(' ', h('a', { href: `/console/runs/${runId}`, text: 'see its run' }));
        return;
      }
      if (runId) opened(runId);
    } catch (err) {
      status.textContent = `Request failed: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      submit.removeAttribute('disabled');
    }
  });
  return form;
}
