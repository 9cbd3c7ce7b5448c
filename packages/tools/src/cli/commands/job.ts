import type { Command } from '../args.js';
import { UsageError } from '../args.js';
import { SERVER_HELP, SERVER_OPTIONS } from './job-http.js';
import { jobSubmit } from './job-submit.js';
import { jobCancel, jobStatusCommand } from './job-status.js';
import { jobResultsCommand } from './job-results.js';

export const jobCommand: Command = {
  name: 'job',
  summary: 'Batch jobs: submit a folder or S3 prefix of inputs, follow a job, cancel it, fetch its results (docs/jobs.md).',
  usage: 'job submit <pipeline> <folder | s3 prefix> [--output PREFIX] [--jsonl] | job status <id> [--follow] [--json] | job results <id> [--out FILE] | job cancel <id>   [--url URL] [--data DIR]',
  help: [
    ['submit <pipeline> <src>', 'a local folder (uploaded first, with a progress bar) or a prefix in the bucket; prints the job id alone on its last line'],
    ['--output PREFIX', 'submit: where results go in the bucket (default results/<pipeline>/<time>/)'],
    ['--jsonl', 'submit: <src> is one JSONL object of Open Inference Protocol requests, not a prefix of inputs'],
    ['status <id>', 'state, counts, throughput and ETA; --follow draws a live progress bar until the job ends'],
    ['--json', 'status: print the whole status object'],
    ['results <id>', 'one JSON line per input (key, outputs and run id, or error) on stdout, or into --out FILE'],
    ['cancel <id>', 'drop the queued items; running ones finish'],
    ...SERVER_HELP,
  ],
  options: { ...SERVER_OPTIONS, output: { type: 'string' }, jsonl: { type: 'boolean' }, follow: { type: 'boolean' }, json: { type: 'boolean' }, out: { type: 'string' } },
  async run({ values, positionals }) {
    const [sub, ...args] = positionals;
    switch (sub) {
      case 'submit': return jobSubmit(values, args);
      case 'status': return jobStatusCommand(values, args);
      case 'results': return jobResultsCommand(values, args);
      case 'cancel': return jobCancel(values, args);
      default: throw new UsageError(`job takes submit, status, results or cancel${sub ? `, not '${sub}'` : ''}`);
    }
  },
};
