import type { Context, Hono } from 'hono';
import type { Manifest, StageSpec } from '../manifest/types.js';
import type { PipelineRegistry } from '../pipelines/registry.js';
import { BadRequestError, NotFoundError, clip } from '../errors.js';
import { splitStageModel, stageModelName, type ModelStatistics, type ModelStat } from '../observability/statistics.js';
import { pipelineConfig, stageConfig, stageMetadata } from './model-config.js';

export interface ModelRoutesOptions {
  registry: PipelineRegistry;
  visible: (c: Context, pipeline: string) => boolean;
  /** Without it the statistics routes are not served. */
  statistics?: ModelStatistics;
}

/** A model this gateway answers for: a pipeline, or one of its stages. */
interface ServedModel {
  manifest: Manifest;
  stage?: StageSpec;
}

/**
 * A stage model's name, `{pipeline}.{stage}`: pipeline and stage names hold
 * no '.', so a dotted name is never a pipeline's (manifest/schema.ts).
 */
const STAGE_MODEL = ':name{[^/.]+\\.[^/.]+}';

/**
 * Triton's model configuration and statistics extensions, and the stage
 * models (each stage answering as a model of its own). Registered before
 * the pipeline routes, so `/v2/models/stats` and dotted names reach these.
 */
export function registerModelRoutes(app: Hono, { registry, visible, statistics }: ModelRoutesOptions): void {
  if (statistics) {
    app.get('/v2/models/stats', (c) => c.json({
      model_stats: registry.names().filter((n) => visible(c, n)).flatMap((n) => {
        const m = servedManifest(registry, n);
        return m ? statsOf(statistics, m) : [];
      }),
    }));
  }

  for (const base of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.get(`${base}/config`, (c) => {
      const { manifest, stage } = resolve(registry, c.req.param('name') ?? '', c.req.param('version'));
      return c.json(stage ? stageConfig(manifest, stage) : pipelineConfig(manifest));
    });
    if (statistics) {
      app.get(`${base}/stats`, (c) => {
        const name = c.req.param('name') ?? '';
        const version = c.req.param('version');
        const served = statsModel(registry, name, version);
        return c.json({ model_stats: [statistics.stat(name, served.manifest.version)] });
      });
    }
  }

  for (const base of [`/v2/models/${STAGE_MODEL}`, `/v2/models/${STAGE_MODEL}/versions/:version`]) {
    app.get(base, (c) => {
      const { manifest, stage } = resolve(registry, c.req.param('name') ?? '', c.req.param('version'));
      return c.json(stageMetadata(manifest, stage!));
    });
    app.get(`${base}/ready`, (c) => {
      const name = c.req.param('name') ?? '';
      const { manifest, stage } = resolve(registry, name, c.req.param('version'));
      const ready = registry.isReady(manifest.name) && !registry.status(manifest.name).stages.some((h) => h.stage === stage!.name && !h.ready);
      return c.json({ name, ready }, ready ? 200 : 503);
    });
    app.post(`${base}/infer`, (c) => {
      const name = c.req.param('name') ?? '';
      const { manifest, stage } = resolve(registry, name, c.req.param('version'));
      throw new BadRequestError(
        `model '${name}' is stage '${stage!.name}' of pipeline '${manifest.name}': its statistics, configuration and metadata are served, `
        + `but it is inferred through its pipeline (POST /v2/models/${manifest.name}/infer), which feeds it the tensors its upstream stages make`);
    });
  }
}

/** The pipeline or stage a model name means, or 404 (unknown model, version or stage) / 503 (a manifest that could not be read). */
function resolve(registry: PipelineRegistry, name: string, version: string | undefined): Required<ServedModel> | { manifest: Manifest; stage?: undefined } {
  const split = splitStageModel(name);
  if (!split) return { manifest: registry.manifest(name, version) };
  const manifest = registry.manifest(split.pipeline, version);
  const stage = manifest.stages.find((s) => s.name === split.stage);
  if (!stage) {
    throw new NotFoundError(`unknown model '${clip(name)}': pipeline '${manifest.name}' has no stage '${clip(split.stage)}' (stage models: ${manifest.stages.map((s) => stageModelName(manifest.name, s.name)).join(', ')})`);
  }
  return { manifest, stage };
}

/** As Triton's statistics: a model that is not served, or a version it does not serve, is a 400. */
function statsModel(registry: PipelineRegistry, name: string, version: string | undefined): ServedModel {
  const pipeline = splitStageModel(name)?.pipeline ?? name;
  const manifest = registry.names().includes(pipeline) ? servedManifest(registry, pipeline) : undefined;
  if (!manifest) throw new BadRequestError(`requested model '${clip(name)}' is not available`);
  if (version !== undefined && version !== manifest.version) {
    throw new BadRequestError(`requested model version '${clip(version)}' is not available for model '${clip(name)}' (serving version '${manifest.version}')`);
  }
  try {
    return resolve(registry, name, version);
  } catch {
    throw new BadRequestError(`requested model '${clip(name)}' is not available`);
  }
}

/** A pipeline with statistics to show: one whose manifest was read and that is not unloaded. */
function servedManifest(registry: PipelineRegistry, name: string): Manifest | undefined {
  const m = registry.known(name);
  if (!m) return undefined;
  return registry.status(name).reason === 'unloaded' ? undefined : m;
}

/** The pipeline's entry, then one per stage model, in the pipeline's order. */
function statsOf(statistics: ModelStatistics, m: Manifest): ModelStat[] {
  return [
    statistics.stat(m.name, m.version),
    ...m.order.map((s) => statistics.stat(stageModelName(m.name, s), m.version)),
  ];
}
