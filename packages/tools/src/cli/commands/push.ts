import type { Command } from '../args.js';
import { str } from '../args.js';
import { manifestPath } from '../pipeline-arg.js';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import { buildIfNeeded } from '../../pipelines/build.js';
import { pushPipeline } from '../../pipelines/push.js';
import { openEnvironment } from '../../serve/environment.js';

export const pushCommand: Command = {
  name: 'push',
  summary: "Upload a pipeline's weights to the bucket (multipart, skipping unchanged objects) and record its version.",
  usage: 'push <pipeline> [--data .ensemble]',
  help: [
    ['<pipeline>', 'a name under models/, a folder, or a pipeline.yaml'],
    ['--data DIR', 'local data folder when no S3 endpoint is configured (default .ensemble); while a server runs on it, its emulators take the push'],
  ],
  options: { data: { type: 'string' } },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new Error('push takes one pipeline');
    const m = await loadManifest(manifestPath(positionals[0]));
    await buildIfNeeded(m, (s) => console.error(s));
    const env = await openEnvironment({ dataDir: str(values.data, '.ensemble'), shareRunningServer: true });
    if (env.sharedWith) console.error(`pushing through the server on ${env.sharedWith.url ?? `pid ${env.sharedWith.pid}`}, which holds the data folder`);
    try {
      await pushPipeline(m, { s3: env.s3, bucket: env.settings.bucket, progress: true, log: (s) => console.log(s) });
      console.log(`recorded ${m.name} v${m.version}`);
    } finally {
      await env.close();
    }
  },
};
