import type { Context, Hono } from 'hono';
import { stream } from 'hono/streaming';
import type { PipelineRegistry } from '../pipelines/registry.js';
import type { Jobs } from '../jobs/service.js';
import { parseSubmit } from '../jobs/submit.js';
import { BadRequestError, NotFoundError, clip } from '../errors.js';
import { isRunId } from '../storage/run-id.js';

export interface JobRoutesOptions {
  registry: PipelineRegistry;
  jobs: Jobs;
  visible: (c: Context, pipeline: string) => boolean;
}

/**
 * Batch jobs over HTTP: `POST /v2/models/{m}/jobs` (202 with the job),
 * `GET /v2/jobs/{id}`, `DELETE /v2/jobs/{id}` (cancel) and
 * `GET /v2/jobs/{id}/results` (JSONL). See docs/jobs.md.
 */
export function registerJobRoutes(app: Hono, { registry, jobs, visible }: JobRoutesOptions): void {
  app.post('/v2/models/:name/jobs', async (c) => {
    const name = c.req.param('name');
    if (!visible(c, name)) throw new NotFoundError(`unknown model '${name}'`);
    registry.known(name);
    let body: unknown;
    try { body = JSON.parse(await c.req.text()); } catch { throw new BadRequestError('the job request body is not JSON'); }
    const status = await jobs.submit(name, parseSubmit(body));
    return c.json(status, 202, { location: `/v2/jobs/${status.id}` });
  });

  // A job another key cannot see is, for that key, no job at all.
  const owned = async (c: Context): Promise<string> => {
    const id = c.req.param('id') ?? '';
    // Job ids are UUIDs like run ids: anything else never was one.
    if (!isRunId(id)) throw new BadRequestError(`'${clip(id, 64)}' is not a job id (a UUID, as POST /v2/models/{m}/jobs answers)`);
    const pipeline = await jobs.pipelineOf(id);
    if (!pipeline || !visible(c, pipeline)) throw new NotFoundError(`no job '${id}'`);
    return id;
  };

  app.get('/v2/jobs/:id', async (c) => c.json(await jobs.status(await owned(c))));
  app.delete('/v2/jobs/:id', async (c) => c.json(await jobs.cancel(await owned(c))));
  app.get('/v2/jobs/:id/results', async (c) => {
    const id = await owned(c);
    c.header('content-type', 'application/x-ndjson');
    return stream(c, async (s) => {
      for await (const line of jobs.results(id)) await s.write(`${JSON.stringify(line)}\n`);
    });
  });
}
