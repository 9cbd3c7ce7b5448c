import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { ManifestError } from '../../src/errors.js';

/** Temp folders made by writePipeline, removed by removePipelines(). */
const made: string[] = [];

/**
 * Writes `pipeline.yaml` (and any extra files, e.g. stage modules) into a
 * fresh temp folder; returns the folder and the YAML's path.
 */
export async function writePipeline(yaml: string, files: Record<string, string> = {}): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ensemble-manifest-'));
  made.push(dir);
  const file = join(dir, 'pipeline.yaml');
  await writeFile(file, yaml);
  for (const [name, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return { dir, file };
}

export async function removePipelines(): Promise<void> {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
}

/** A stand-in stage module: the loader only checks that the file exists. */
export const STAGE_MODULE = 'export default { process: (item) => item };\n';

/**
 * Asserts `run` fails with a ManifestError whose message starts with
 * `<file>: <where>: <field>:` and contains every `also` fragment.
 */
export async function expectManifestError(
  run: () => Promise<unknown>, file: string, where: string, field: string, ...also: (string | RegExp)[]
): Promise<ManifestError> {
  let error: unknown;
  try {
    await run();
  } catch (e) {
    error = e;
  }
  expect(error, 'expected a ManifestError').toBeInstanceOf(ManifestError);
  const err = error as ManifestError;
  expect(err.message.startsWith(`${file}: ${where}: ${field}: `), `message: ${err.message}`).toBe(true);
  for (const part of also) {
    if (typeof part === 'string') expect(err.message).toContain(part);
    else expect(err.message).toMatch(part);
  }
  return err;
}
