import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { REPO } from './helpers/pipelines.js';

describe('the ensemble command', () => {
  it('prints its version, and the runtime it runs on', async () => {
    const r = await runCli(['--version']);
    expect(r.code, r.stderr).toBe(0);
    const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    expect(r.stdout.trim()).toMatch(new RegExp(`^ensemble ${version.replace(/\./g, '\\.')} \\(node \\d+\\.\\d+\\.\\d+, onnxruntime-node \\d+\\.\\d+\\.\\d+\\)$`));
  });

  it('lists init and soak among its commands', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\s+init\s/m);
    expect(r.stdout).toMatch(/^\s+soak\s/m);
  });
});

describe('ensemble infer with no server', () => {
  it('says there is none and how to start one, with exit code 1 and no stack trace', async () => {
    // A port that was just free: nothing listens on it.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const url = `http://127.0.0.1:${port}`;
    const r = await runCli(['infer', 'demo', '--url', url, '--body', '{"inputs":[]}']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`error: no server at ${url}: start one with npm start`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('ensemble runs with no server and no data folder', () => {
  it('says so instead of making an empty folder and reporting no runs', async () => {
    const missing = join(tmpdir(), `ensemble-no-such-data-${process.pid}`);
    const r = await runCli(['runs', 'demo', '--data', missing]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`no server is running for data folder ${missing} and it does not exist`);
    expect(existsSync(missing)).toBe(false);
  });
});
