import { Hono, type Context } from 'hono';
import type { AppMount } from '@ensemble/core/http/app.js';
import type { PipelineRegistry } from '@ensemble/core/pipelines/registry.js';
import { NotFoundError, clip } from '@ensemble/core/errors.js';
import { assetReader, STATIC_DIR } from './assets.js';
import { pipelineView } from './pipeline-view.js';

export interface ConsoleOptions {
  registry: PipelineRegistry;
  /** Whether the request's API key may see a pipeline (the gateway's own rule). */
  visible?: (c: Context, pipeline: string) => boolean;
  /** Where the static files are (default: this package's static/). */
  staticDir?: string;
}

/**
 * The paths that are views of the console: each answers the one HTML page,
 * which draws the view the path names, so a deep link works on reload.
 */
export const VIEW_PATHS = ['/console', '/console/', '/console/runs', '/console/live', '/console/pipelines/:name', '/console/runs/:id'];

/**
 * The console as two mounts for createApp: its page and scripts are public
 * (they hold no data: without a key they can only ask for one), its API is
 * behind the gateway's API key guard like every route that shows data.
 */
export function consoleMounts({ registry, visible = () => true, staticDir = STATIC_DIR }: ConsoleOptions): AppMount[] {
  const read = assetReader(staticDir);
  const pages = new Hono();
  const page = async (c: Context) => {
    const a = await read('index.html');
    if (!a) throw new NotFoundError('the console page is missing from this installation');
    return c.body(a.body, 200, { 'content-type': a.type, 'cache-control': 'no-cache' });
  };
  for (const p of VIEW_PATHS) pages.get(p, page);
  pages.get('/console/assets/:file', async (c) => {
    const a = await read(c.req.param('file'));
    if (!a) return c.json({ error: `no console asset '${clip(c.req.param('file'), 64)}'` }, 404);
    return c.body(a.body, 200, { 'content-type': a.type, 'cache-control': 'no-cache' });
  });

  const api = new Hono();
  api.get('/console/api/pipelines/:name', (c) => {
    const name = c.req.param('name');
    const manifest = visible(c, name) ? registry.known(name) : undefined;
    if (!manifest) throw new NotFoundError(`unknown model '${name}'`);
    return c.json(pipelineView(registry, manifest));
  });
  return [{ app: pages, public: true }, { app: api }];
}
