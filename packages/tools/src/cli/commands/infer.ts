import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Command } from '../args.js';
import { UsageError } from '../args.js';
import { findServer, isConnectionRefused } from '../find-server.js';
import { authHeaders } from '../api-key-header.js';
import { EnsembleError } from '@ensemble/core/errors.js';
import type { InferResponseJson } from '@ensemble/core/tensor/protocol.js';

const IMAGE_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp' };

export const inferCommand: Command = {
  name: 'infer',
  summary: 'Send one inference request to a running server and print the result.',
  usage: 'infer <pipeline> (--image photo.png | --body \'{"inputs": [...]}\' | --body @request.json) [--url URL] [--data .ensemble] [--json]',
  help: [
    ['--image FILE', 'post the file as the raw bytes of the pipeline\'s single BYTES input (OCR)'],
    ['--body JSON|@FILE', 'an Open Inference Protocol request body'],
    ['--url URL', 'server (default: the one holding the data folder, wherever it listens; else http://127.0.0.1:8080)'],
    ['--data DIR', 'local data folder whose server to find (default .ensemble)'],
    ['--json', 'print the whole response instead of the text lines'],
  ],
  options: { image: { type: 'string' }, body: { type: 'string' }, url: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError('infer takes one pipeline name');
    const server = await findServer(values);
    const url = `${server.url}/v2/models/${encodeURIComponent(positionals[0])}/infer`;
    let body: Uint8Array | string;
    let type: string;
    if (typeof values.image === 'string') {
      body = await readFile(values.image);
      type = IMAGE_TYPES[extname(values.image).toLowerCase()] ?? 'application/octet-stream';
    } else if (typeof values.body === 'string') {
      body = values.body.startsWith('@') ? await readFile(values.body.slice(1), 'utf8') : values.body;
      type = 'application/json';
    } else {
      throw new UsageError('infer needs --image or --body');
    }
    let res: Response;
    try {
      res = await fetch(url, { method: 'POST', body, headers: { 'content-type': type, ...authHeaders() } });
    } catch (e) {
      if (isConnectionRefused(e)) throw new EnsembleError(`no server at ${server.url}: start one with npm start`, 'not_ready');
      throw e;
    }
    const text = await res.text();
    if (!res.ok) {
      console.error(`error ${res.status}: ${text}`);
      return 1;
    }
    const response = JSON.parse(text) as InferResponseJson;
    const lines = response.outputs.find((o) => o.name === 'text' && o.datatype === 'BYTES');
    if (values.json || !lines) { console.log(JSON.stringify(response, null, 2)); return 0; }
    const conf = response.outputs.find((o) => o.name === 'confidence')?.data as number[] | undefined;
    (lines.data as string[]).forEach((t, i) => console.log(conf ? `${t}\t(${conf[i].toFixed(3)})` : t));
    return 0;
  },
};
