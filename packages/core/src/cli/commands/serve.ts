import type { Command } from '../args.js';
import { int, str } from '../args.js';
import { startServer } from '../../serve/server.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Serve every pipeline in models/ over the Open Inference Protocol (local S3 and DynamoDB emulators unless pointed at AWS).',
  usage: 'serve [--port 8080] [--host 127.0.0.1] [--data .ensemble] [--models models] [--pipeline NAME ...]',
  help: [
    ['--port N', 'port to listen on (default 8080; 0 picks a free one)'],
    ['--host H', 'address to bind (default 127.0.0.1)'],
    ['--data DIR', 'local data folder: emulator data and the weights cache (default .ensemble)'],
    ['--models DIR', 'where pipeline folders live (default models)'],
    ['--pipeline NAME', 'serve only this pipeline (repeatable)'],
    ['', 'env: ENSEMBLE_S3_ENDPOINT / ENSEMBLE_DYNAMODB_ENDPOINT or ENSEMBLE_USE_AWS=1 use those instead of emulators;'],
    ['', '     ENSEMBLE_BUCKET, ENSEMBLE_RUNS_TABLE, AWS_REGION name the resources'],
  ],
  options: {
    port: { type: 'string' }, host: { type: 'string' }, data: { type: 'string' }, models: { type: 'string' },
    pipeline: { type: 'string', multiple: true },
  },
  async run({ values }) {
    const server = await startServer({
      port: int(values.port, 8080, '--port'),
      host: str(values.host, '127.0.0.1'),
      dataDir: str(values.data, '.ensemble'),
      modelsDir: str(values.models, 'models'),
      pipelines: values.pipeline as string[] | undefined,
    });
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        console.error(`[ensemble] ${sig}: draining in-flight requests and flushing run records...`);
        server.close().then(resolve, (e) => { console.error(e); resolve(); });
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    return 0;
  },
};
