import type { Command } from '../args.js';
import { int, str } from '../args.js';
import { resolve } from 'node:path';
import { UsageError } from '../args.js';
import { DEFAULT_DRAIN_MS, startServer } from '../../serve/server.js';
import { LocalLambdaTransport } from '../../lambda-host/local-transport.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Serve every pipeline in models/ over the Open Inference Protocol (local S3 and DynamoDB emulators unless pointed at AWS).',
  usage: 'serve [--port 8080] [--host 127.0.0.1] [--data .ensemble] [--models models] [--pipeline NAME ...] [--transport local|lambda] [--api-key KEY] [--observer module.ts ...] [--watch] [--drain-timeout 25] [--quiet]',
  help: [
    ['--port N', 'port to listen on (default 8080; 0 picks a free one)'],
    ['--host H', 'address to bind (default 127.0.0.1)'],
    ['--data DIR', 'local data folder: emulator data and the weights cache (default .ensemble)'],
    ['--models DIR', 'where pipeline folders live (default models)'],
    ['--pipeline NAME', 'serve only this pipeline (repeatable)'],
    ['--transport T', 'local (default): each ONNX stage is a pool of worker processes;'],
    ['', 'lambda: each ONNX stage is a function in a local Lambda host, invoked with the AWS SDK as on AWS'],
    ['--lambda-port N', 'with --transport lambda: port of the local Lambda Invoke API (default: a free one)'],
    ['--api-key KEY', 'require this key (x-api-key or Authorization: Bearer) on every route but health, as on Lambda;'],
    ['', 'default ENSEMBLE_API_KEY; ENSEMBLE_API_KEYS=\'k1=demo,ocr;k2=*\' adds keys scoped to pipelines'],
    ['--watch', 'reload a pipeline when its manifest, stage code or weights change (and load new pipeline folders);'],
    ['', 'the old version serves until the new one is loaded, and keeps serving if it fails to load'],
    ['--observer FILE', 'an observer module told of every pipeline\'s runs, batches and monitor findings (repeatable; docs/manifest.md)'],
    ['--drain-timeout S', 'on SIGTERM or SIGINT, wait at most S seconds (default 25) for requests in flight, then close their'],
    ['', 'connections (they end as the client gone, with their run records) and exit'],
    ['--quiet', 'no access log (by default one line per request on stdout: method, path, status, ms, run id, pipeline)'],
    ['', 'env: ENSEMBLE_S3_ENDPOINT / ENSEMBLE_DYNAMODB_ENDPOINT or ENSEMBLE_USE_AWS=1 use those instead of emulators;'],
    ['', '     ENSEMBLE_BUCKET, ENSEMBLE_RUNS_TABLE, AWS_REGION name the resources'],
  ],
  options: {
    port: { type: 'string' }, host: { type: 'string' }, data: { type: 'string' }, models: { type: 'string' },
    pipeline: { type: 'string', multiple: true }, transport: { type: 'string' }, 'lambda-port': { type: 'string' },
    quiet: { type: 'boolean' }, watch: { type: 'boolean' }, 'drain-timeout': { type: 'string' }, 'api-key': { type: 'string' }, observer: { type: 'string', multiple: true },
  },
  async run({ values }) {
    const transport = str(values.transport, 'local');
    if (transport !== 'local' && transport !== 'lambda') throw new UsageError(`--transport must be local or lambda, got '${transport}'`);
    const dataDir = str(values.data, '.ensemble');
    const drainMs = int(values['drain-timeout'], DEFAULT_DRAIN_MS / 1000, '--drain-timeout') * 1000;
    const log = (s: string) => console.error(`[ensemble] ${s}`);
    const server = await startServer({
      transport: transport === 'lambda'
        ? async (env) => {
          const t = await LocalLambdaTransport.start({
            settings: env.settings, s3: env.s3, log,
            host: { port: int(values['lambda-port'], 0, '--lambda-port'), tmpDir: resolve(dataDir, 'lambda'), log: (line) => console.error(`[lambda] ${line}`) },
          });
          log(`local Lambda host on ${t.url} (POST /2015-03-31/functions/<name>/invocations)`);
          return t;
        }
        : undefined,
      port: int(values.port, 8080, '--port'),
      host: str(values.host, '127.0.0.1'),
      dataDir,
      modelsDir: str(values.models, 'models'),
      pipelines: values.pipeline as string[] | undefined,
      watch: values.watch === true,
      observers: values.observer as string[] | undefined,
      apiKey: typeof values['api-key'] === 'string' ? values['api-key'] : undefined,
      // stdout, apart from the server's own messages on stderr; one write per line keeps it cheap.
      requestLog: values.quiet ? undefined : (line) => { process.stdout.write(`${line}\n`); },
    });
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        console.error(`[ensemble] ${sig}: draining in-flight requests and flushing run records...`);
        server.close({ drainMs }).then(resolve, (e) => { console.error(e); resolve(); });
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    return 0;
  },
};
