import type { Context, Hono } from 'hono';
import type { PipelineRegistry } from '../pipelines/registry.js';
import { BadRequestError, NotFoundError, clip } from '../errors.js';
import { readBody } from './body.js';

export interface ModelRepository {
  /** Load or reload `name` from disk; rejects with why, the version serving (if any) still serving. */
  load(name: string): Promise<void>;
  unload(name: string): Promise<void>;
}

export interface RepositoryRoutesOptions {
  registry: PipelineRegistry;
  repository: ModelRepository;
  visible: (c: Context, pipeline: string) => boolean;
}

/**
 * Triton's model repository extension: `POST /v2/repository/index` (a JSON
 * array), `.../models/{m}/load` and `.../unload` (an empty body on success).
 * A pipeline loads from its folder only: a load that carries a configuration
 * or files of its own (tritonclient's `load_model(config=..., files=...)`)
 * is refused rather than answered 200 with the folder's version loaded.
 */
export function registerRepositoryRoutes(app: Hono, { registry, repository, visible }: RepositoryRoutesOptions): void {
  app.post('/v2/repository/index', async (c) => {
    const ready = (await repositoryBody(c, 'index')).ready;
    if (ready !== undefined && typeof ready !== 'boolean') throw new BadRequestError(`'ready' must be true or false, got ${clip(JSON.stringify(ready))}`);
    return c.json(registry.index().filter((m) => visible(c, m.name) && (ready !== true || m.state === 'READY')));
  });
  app.post('/v2/repository/models/:name/load', async (c) => {
    const name = c.req.param('name');
    if (!visible(c, name)) throw new NotFoundError(`unknown model '${name}'`);
    refuseOverrides(name, (await repositoryBody(c, 'load')).parameters);
    await repository.load(name);
    return c.body(null, 200);
  });
  app.post('/v2/repository/models/:name/unload', async (c) => {
    const name = c.req.param('name');
    if (!visible(c, name)) throw new NotFoundError(`unknown model '${name}'`);
    // Triton's `unload_dependents` also unloads an ensemble's composing models: a pipeline's stages go with it anyway.
    parametersOf(await repositoryBody(c, 'unload'));
    await repository.unload(name);
    return c.body(null, 200);
  });
}

/** Bodies here are a few parameters; a load carrying model files (base64) is refused unread past this. */
const MAX_BODY_BYTES = 1024 * 1024;

/** The request body as a JSON object; an empty body is `{}`. */
async function repositoryBody(c: Context, what: string): Promise<Record<string, unknown>> {
  const text = new TextDecoder().decode(await readBody(c.req.raw, MAX_BODY_BYTES));
  if (!text.trim()) return {};
  let body: unknown;
  try { body = JSON.parse(text); } catch { throw new BadRequestError(`the repository ${what} request body is not JSON`); }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestError(`the repository ${what} request body must be a JSON object, got ${clip(text)}`);
  }
  return body as Record<string, unknown>;
}

function parametersOf(body: Record<string, unknown>): Record<string, unknown> {
  const p = body.parameters;
  if (p === undefined) return {};
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new BadRequestError(`'parameters' must be a JSON object, got ${clip(JSON.stringify(p))}`);
  return p as Record<string, unknown>;
}

/** The extension's `config` and `file:<path>` parameters replace what is on disk, which a pipeline does not take. */
function refuseOverrides(name: string, parameters: unknown): void {
  const given = Object.keys(parametersOf({ parameters })).filter((k) => k === 'config' || k.startsWith('file:'));
  if (given.length === 0) return;
  throw new BadRequestError(`model '${name}' loads from its folder's pipeline.yaml; a load request's ${given.map((k) => `'${clip(k, 40)}'`).join(', ')} `
    + `parameter${given.length > 1 ? 's are' : ' is'} not supported: change the folder and load again`);
}
