// /console: every pipeline the gateway serves, with its readiness and stages.

import { enc, getJson } from './api.js';
import { h } from './dom.js';
import { drawDag } from './dag.js';

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
      card.append(h('p', { class: 'muted', text: `${view.stages.length} stages: ${view.stages.map((x) => x.name).join(' → ')}` }));
      const mini = drawDag(view);
      mini.classList.add('mini');
      card.append(h('div', { class: 'mini-dag' }, [mini]));
    }, () => undefined);
  }
}
