import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/manifest/load.js';
import type { Manifest } from '../../src/manifest/types.js';
import { PipelineRegistry } from '../../src/pipelines/registry.js';
import type { StageTransport } from '../../src/transport/types.js';

const roots: string[] = [];
afterAll(async () => { for (const r of roots) await rm(r, { recursive: true, force: true }); });

async function pipeline(folder: string, name: string, module = 'export default { process: (item: any) => ({ y: item.x }) };\n'): Promise<Manifest> {
  const root = await mkdtemp(join(tmpdir(), 'ensemble-registry-'));
  roots.push(root);
  const dir = join(root, folder);
  await mkdir(join(dir, 'stages'), { recursive: true });
  await writeFile(join(dir, 'stages', 'pass.ts'), module);
  await writeFile(join(dir, 'pipeline.yaml'), `
name: ${name}
inputs: [{ name: x, datatype: INT32, shape: [-1] }]
outputs: [{ name: y, datatype: INT32, shape: [-1] }]
stages:
  - { name: pass, kind: function, module: stages/pass.ts, inputs: [x], outputs: [y] }
`);
  return loadManifest(join(dir, 'pipeline.yaml'));
}

/** Counts what the registry asks of its transport: a duplicate must not load anything. */
function countingTransport(): StageTransport & { loads: string[]; calls: string[] } {
  const loads: string[] = [];
  const calls: string[] = [];
  return {
    kind: 'in-process', loads, calls,
    async load(m, address) { loads.push(m.file); calls.push(`load ${address}`); },
    async unload(address) { calls.push(`unload ${address}`); },
    async invoke() { throw new Error('not used'); },
    concurrency: () => 1,
    async close() { calls.push('close'); },
  };
}

describe('PipelineRegistry.add', () => {
  it('refuses a second pipeline of a name it already has, naming both manifests, and keeps the first', async () => {
    const transport = countingTransport();
    const registry = new PipelineRegistry(transport);
    const first = await pipeline('a', 'x');
    const second = await pipeline('b', 'x');
    await registry.add(first);
    await expect(registry.add(second)).rejects.toThrow(`pipeline 'x' is declared twice: ${first.file} and ${second.file}`);
    expect(transport.loads).toEqual([first.file]);
    expect(registry.names()).toEqual(['x']);
    expect(registry.get('x').manifest.file).toBe(first.file);
    await registry.close();
  });
});

describe('PipelineRegistry.reload on one shared transport', () => {
  it('loads each version at its own address and unloads exactly the one it replaces, or the one that failed to load', async () => {
    const transport = countingTransport();
    const registry = new PipelineRegistry(transport);
    const first = await pipeline('a', 'x');
    await registry.add(first);
    await registry.reload(await pipeline('b', 'x'));
    expect(registry.transportOf('x')?.address).toBe('x#2');
    expect(registry.get('x').address).toBe('x#2');
    // Its stage module fails after the transport loaded it: that version goes, x#2 keeps serving.
    const broken = await pipeline('c', 'x', "throw new Error('this module does not import');\n");
    await expect(registry.reload(broken)).rejects.toThrow('this module does not import');
    expect(registry.get('x').address).toBe('x#2');
    await registry.unload('x');
    await registry.reload(first);
    expect(registry.get('x').address).toBe('x#4');
    await registry.close();
    expect(transport.calls).toEqual(['load x', 'load x#2', 'unload x', 'load x#3', 'unload x#3', 'unload x#2', 'load x#4', 'unload x#4', 'close']);
  });
});

describe('PipelineRegistry.reload, told as traffic moves', () => {
  it('calls serving() once the new version takes requests, before the old version has finished its own', async () => {
    const registry = new PipelineRegistry(countingTransport());
    await registry.add(await pipeline('a', 'x'));
    // A request still on the old version: the reload waits for it before it resolves.
    let release!: () => void;
    const held = registry.use('x', undefined, () => new Promise<void>((r) => { release = r; }));
    const events: string[] = [];
    const reloading = registry.reload(await pipeline('b', 'x'), { serving: () => events.push(`serving (now ${registry.get('x').address})`) })
      .then(() => events.push('reloaded'));
    for (let i = 0; i < 100 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual(['serving (now x)']);
    expect(registry.get('x').address).toBe('x#2');
    release();
    await held;
    await reloading;
    expect(events).toEqual(['serving (now x)', 'reloaded']);
    await registry.close();
  });
});
