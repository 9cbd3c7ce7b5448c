// /console: every pipeline the gateway serves, with its readiness and stages.

import { enc, getJson } from './api.js';
import { h } from './dom.js';

/** @param {HTMLElement} root */
export async function pipelinesView(root) {
  const { models } = await getJson('/v2/models');
  root.replaceChildren(h('h1', { text: 'Pipelines' }));
  if (!models.length) { root.append(h('p', { class: 'muted', text: 'This gateway serves no pipelines.' })); return; }
  const list = h('div', { class: 'cards' });
  root.append(list);
  for (const m of models) {
    const card = h('a', { class: 'card', href: `/console/pipelines/${enc(m.name)}`, 'data-pipeline': m.name }, [
      h('div', { class: 'card-head' }, [h('strong', { text: m.name }), ' ', h('span', { class: 'muted', text: `v${m.version}` }), ' ',
        h('span', { class: `badge ${m.ready ? 'ok' : 'bad'}`, text: m.ready ? 'ready' : 'not ready' })]),
      m.reason ? h('p', { class: 'error', text: m.reason }) : undefined,
    ]);
    list.append(card);
    getJson(`/console/api/pipelines/${enc(m.name)}`).then((view) => {
      if (view.description) card.append(h('p', { class: 'desc', text: view.description }));
      card.append(h('p', { class: 'muted', text: `${view.stages.length} stages, in order:` }));
      card.append(h('div', { class: 'chips' }, view.stages.map((x) => h('span', {
        class: `chip ${x.kind}${x.live.ready ? '' : ' down'}`, 'data-stage': x.name,
        title: `${x.kind}, batch ≤ ${x.batch.maxSize}${x.kind === 'onnx' ? `, ${x.scale.instances} instance(s)` : ''}`,
      }, [x.name, x.fanout ? h('span', { class: 'chip-mark', text: ' fan-out' }) : '', x.when ? h('span', { class: 'chip-mark when', text: ` when ${x.when.tensor}` }) : '']))));
    }, () => undefined);
  }
}
