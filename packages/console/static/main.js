// The console's entry: the header (sections, API key), and the router that
// draws the view the path names.

import { apiKey, setApiKey, HttpError } from './api.js';
import { h } from './dom.js';
import { setNavigator } from './router.js';
import { pipelinesView } from './view-pipelines.js';
import { pipelineView } from './view-pipeline.js';
import { runsView } from './view-runs.js';
import { runView } from './view-run.js';
import { liveView } from './view-live.js';

const root = /** @type {HTMLElement} */ (document.getElementById('view'));
/** @type {(() => void) | undefined} */
let cleanup;

/** @param {string} path */
async function show(path) {
  cleanup?.();
  cleanup = undefined;
  const parts = path.replace(/\/+$/, '').split('/').slice(2).map(decodeURIComponent);
  const section = parts[0] === 'runs' ? 'runs' : parts[0] === 'live' ? 'live' : 'pipelines';
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', /** @type {HTMLElement} */ (a).dataset.section === section);
  root.dataset.view = parts.length === 2 ? parts[0].replace(/s$/, '') : section;
  root.setAttribute('aria-busy', 'true');
  try {
    if (parts[0] === 'pipelines' && parts[1]) cleanup = await pipelineView(root, parts[1]);
    else if (parts[0] === 'runs' && parts[1]) cleanup = await runView(root, parts[1]);
    else if (parts[0] === 'runs') cleanup = await runsView(root);
    else if (parts[0] === 'live') cleanup = await liveView(root);
    else await pipelinesView(root);
    document.title = `Ensemble · ${parts.join(' / ') || 'pipelines'}`;
  } catch (e) {
    const status = e instanceof HttpError ? e.status : 0;
    root.replaceChildren(
      h('h1', { text: status === 404 ? 'Not found' : 'Something went wrong' }),
      h('p', { class: 'error', id: 'view-error', text: e instanceof Error ? e.message : String(e) }),
      status === 401 || status === 403 ? h('p', { text: 'This gateway wants an API key: enter it at the top right.' }) : '',
    );
  } finally {
    root.setAttribute('aria-busy', 'false');
  }
}

/** @param {string} path */
function navigate(path) {
  history.pushState(null, '', path);
  void show(location.pathname);
}
setNavigator(navigate);

document.addEventListener('click', (e) => {
  const a = /** @type {HTMLElement} */ (e.target).closest?.('a');
  if (!a || a.target || e.metaKey || e.ctrlKey || e.shiftKey) return;
  const href = a.getAttribute('href') ?? '';
  if (!href.startsWith('/console')) return;
  e.preventDefault();
  navigate(href);
});
window.addEventListener('popstate', () => void show(location.pathname));

// The API key: asked for when the gateway refuses, kept for this tab only.
const keyInput = /** @type {HTMLInputElement} */ (document.getElementById('api-key'));
const keyState = /** @type {HTMLElement} */ (document.getElementById('key-state'));
keyInput.value = apiKey();
keyState.textContent = apiKey() ? 'key set' : '';
document.getElementById('key-form')?.addEventListener('submit', (e) => {
  e.preventDefault();
  setApiKey(keyInput.value.trim());
  keyState.textContent = keyInput.value.trim() ? 'key set' : '';
  void show(location.pathname);
});
window.addEventListener('ensemble:unauthorized', () => {
  keyState.textContent = 'key refused or missing';
  keyState.classList.add('error');
});

void show(location.pathname);
