import { readdir, stat, readFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { JobStatus } from '@ensemble/core/jobs/types.js';
import { UsageError, str } from '../args.js';
import { openEnvironment } from '../../serve/environment.js';
import { createProgress } from '../../util/progress.js';
import { jobRequest } from './job-http.js';

/** `ensemble job submit <pipeline> <folder | prefix | file.jsonl>`: the job's id alone on the last line. */
export async function jobSubmit(values: Record<string, unknown>, args: string[]): Promise<number> {
  if (args.length !== 2) throw new UsageError('job submit takes a pipeline and a local folder or an S3 prefix');
  const [pipeline, source] = args;
  const jsonl = values.jsonl === true;
  const found = await stat(source).catch(() => undefined);
  const kind = found?.isDirectory() ? 'folder' : found?.isFile() && jsonl ? 'file' : undefined;
  // A path written as one (absolute, ./, ../, ~) names a local folder: missing, it is no prefix in the bucket.
  if (!found && /^(\/|\.{1,2}\/|~)/.test(source)) throw new UsageError(`no such folder: ${source}`);
  let prefix = source.replace(/^s3:\/\/[^/]+\//, '');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  if (kind) {
    // Before uploading anything: a pipeline the server does not know would leave the uploads behind for nothing.
    await jobRequest(values, `/v2/models/${encodeURIComponent(pipeline)}`);
    const uploaded = await upload(values, resolve(source), `uploads/${stamp}/`);
    // A local JSONL file is one object: the job reads that key.
    prefix = kind === 'file' ? `${uploaded}${basename(source)}` : uploaded;
  }
  const output = str(values.output, `results/${pipeline}/${stamp}/`);
  const inputs = jsonl ? { jsonl: prefix } : { prefix };
  const res = await jobRequest(values, `/v2/models/${encodeURIComponent(pipeline)}/jobs`, { method: 'POST', body: JSON.stringify({ inputs, output: { prefix: output } }) });
  const job = (await res.json()) as JobStatus;
  console.error(`job of ${job.counts.total} items on ${pipeline}; results under ${job.output.prefix}`);
  console.log(job.id);
  return 0;
}

/** Upload every file under `path` (or the one file it is) to `<prefix><relative path>`, with a progress bar; resolves with the prefix. */
async function upload(values: Record<string, unknown>, path: string, prefix: string): Promise<string> {
  const single = (await stat(path)).isFile();
  const files = single ? [path] : await walk(path);
  const dir = single ? dirname(path) : path;
  if (!files.length) throw new UsageError(`${dir} holds no files`);
  const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
  const env = await openEnvironment({ dataDir: str(values.data, '.ensemble'), shareRunningServer: true });
  const progress = createProgress(`uploading ${files.length} files`, sizes.reduce((a, b) => a + b, 0));
  try {
    let done = 0;
    let next = 0;
    // A few uploads at once: one at a time leaves most of the time in round trips.
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < files.length) {
        const i = next++;
        const key = prefix + relative(dir, files[i]).split('\\').join('/');
        await env.s3.send(new PutObjectCommand({ Bucket: env.settings.bucket, Key: key, Body: await readFile(files[i]) }));
        done += sizes[i];
        progress.update(done);
      }
    }));
    progress.done();
  } finally {
    await env.close();
  }
  return prefix;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}
