import type { Command } from '../args.js';
import { str } from '../args.js';
import { findManifests, loadManifest } from '@ensemble/core/manifest/load.js';
import { buildIfNeeded } from '../../pipelines/build.js';
import { manifestPath } from '../pipeline-arg.js';

export const buildModelsCommand: Command = {
  name: 'build-models',
  summary: 'Generate the weights that are not committed (demo models, cut stage models) by running each pipeline\'s build.ts.',
  usage: 'build-models [pipeline ...] [--models models] [--force]',
  help: [
    ['[pipeline ...]', 'only these (default: every pipeline with a build.ts)'],
    ['--force', 'rebuild even when the files exist'],
  ],
  options: { models: { type: 'string' }, force: { type: 'boolean' } },
  async run({ values, positionals }) {
    const models = str(values.models, 'models');
    const files = positionals.length ? positionals.map((p) => manifestPath(p, models)) : await findManifests(models);
    for (const f of files) {
      const m = await loadManifest(f);
      const built = await buildIfNeeded(m, (s) => console.error(s), values.force === true).catch((e: Error) => {
        if (/has no build\.ts/.test(e.message)) return false;
        throw e;
      });
      console.log(`${m.name}: ${built ? 'built' : 'up to date'}`);
    }
  },
};
