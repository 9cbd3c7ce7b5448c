import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/manifest/load.js';
import { readStages, stagesFile, stagesFilePath } from '../../src/lambda/stage-file.js';

const OCR = fileURLToPath(new URL('../../../../models/ocr/pipeline.yaml', import.meta.url));

describe('the stages file beside a stage function\'s manifest', () => {
  let dir: string;
  let text: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ensemble-stages-file-'));
    text = await readFile(OCR, 'utf8');
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  async function writeCase(name: string, yaml: string, sidecar?: string): Promise<string> {
    const file = join(dir, name, 'pipeline.yaml');
    await rm(join(dir, name), { recursive: true, force: true });
    // The manifest's stage modules beside it, where loadManifest checks for them.
    await cp(join(dirname(OCR), 'stages'), join(dir, name, 'stages'), { recursive: true });
    await writeFile(file, yaml);
    if (sidecar !== undefined) await writeFile(stagesFilePath(file), sidecar);
    return file;
  }

  it('gives the manifest as loadManifest makes it where the file now is, without reading the YAML', async () => {
    const loaded = await loadManifest(OCR);
    const manifest = await writeCase('match', text, JSON.stringify(stagesFile(loaded, text)));
    const got = await readStages(manifest);
    expect(got.from).toBe('stages-file');
    // The bundle moved: the folder's paths follow the file, everything else is as loaded.
    const there = await loadManifest(manifest);
    // weights.source (the build's copy of the weights, outside the folder) stays the build machine's path: a function fetches from the bucket.
    const withoutSource = (m: unknown) => JSON.parse(JSON.stringify(m, (k, v: unknown) => (k === 'source' ? undefined : v)));
    expect(withoutSource(got.manifest)).toEqual(withoutSource(there));
    const decode = got.manifest.stages.find((s) => s.name === 'decode');
    expect(decode?.kind === 'function' && decode.module).toBe(join(dirname(manifest), 'stages', 'decode.ts'));
  });

  it('is ignored once the manifest changed after it was written: the YAML is read', async () => {
    const stale = stagesFile(await loadManifest(OCR), text);
    const edited = text.replace('key: ocr/ch_PP-OCRv4_det_infer.onnx', 'key: ocr/other-detector.onnx');
    expect(edited).not.toBe(text);
    const file = await writeCase('stale', edited, JSON.stringify(stale));
    const got = await readStages(file);
    expect(got.from).toBe('manifest');
    const detect = got.manifest.stages.find((s) => s.name === 'detect');
    expect(detect?.kind === 'onnx' && detect.weights.key).toBe('ocr/other-detector.onnx');
  });

  it('is ignored when missing, unreadable as JSON or of another version', async () => {
    const good = stagesFile(await loadManifest(OCR), text);
    for (const [name, sidecar] of [['none', undefined], ['garbage', '{not json'], ['version', JSON.stringify({ ...good, v: 99 })]] as const) {
      const got = await readStages(await writeCase(name, text, sidecar));
      expect(got.from, name).toBe('manifest');
      expect(got.manifest.name).toBe('ocr');
    }
  });
});
