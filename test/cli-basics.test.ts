import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
