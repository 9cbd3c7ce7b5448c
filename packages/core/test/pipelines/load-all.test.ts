import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipelines } from '../../src/pipelines/load-all.js';
import { startServer } from '@ensemble/tools/serve/server.js';

const manifest = (name: string) => `
name: ${name}
inputs: [{ name: x, datatype: INT32, shape: [-1] }]
outputs: [{ name: y, datatype: INT32, shape: [-1] }]
stages:
  - name: pass
    kind: function
    module: stages/pass.ts
    inputs: [x]
    outputs: [y]
`;

let root: string;
let modelsDir: string;

async function folder(dir: string, name: string): Promise<void> {
  await mkdir(join(modelsDir, dir, 'stages'), { recursive: true });
  await writeFile(join(modelsDir, dir, 'stages', 'pass.ts'), 'export default { process: (item: any) => ({ y: item.x }) };\n');
  await writeFile(join(modelsDir, dir, 'pipeline.yaml'), manifest(name));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-load-all-'));
  modelsDir = join(root, 'models');
  await folder('a', 'x');
  await folder('b', 'x');
  await folder('c', 'other');
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('loadPipelines', () => {
  it('refuses two folders declaring the same pipeline name, naming both manifests', async () => {
    await expect(loadPipelines(modelsDir)).rejects.toThrow(
      `pipeline 'x' is declared twice: ${join(modelsDir, 'a', 'pipeline.yaml')} and ${join(modelsDir, 'b', 'pipeline.yaml')}`,
    );
  });

  it('loads every pipeline when the names are distinct', async () => {
    await rm(join(modelsDir, 'b'), { recursive: true });
    try {
      expect((await loadPipelines(modelsDir)).map((m) => m.name)).toEqual(['x', 'other']);
    } finally {
      await folder('b', 'x');
    }
  });
});

describe('startServer', () => {
  it('does not start when two folders declare the same pipeline, even if only one is asked for', async () => {
    await expect(startServer({ port: 0, dataDir: join(root, 'data'), modelsDir, env: {}, log: () => undefined, pipelines: ['other'] }))
      .rejects.toThrow(/pipeline 'x' is declared twice: .*models\/a\/pipeline\.yaml and .*models\/b\/pipeline\.yaml/);
  });
});
