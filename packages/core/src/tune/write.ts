import { readFile, writeFile } from 'node:fs/promises';
import { isMap, isSeq, parseDocument, type Document, type YAMLMap } from 'yaml';
import { loadManifest } from '../manifest/load.js';
import type { Manifest } from '../manifest/types.js';
import { EnsembleError } from '../errors.js';
import type { StageSettings } from './types.js';

/** What to set on one stage; absent fields are left alone. */
export type StageUpdate = Partial<StageSettings> & { stage: string };

function stageNode(doc: Document, file: string, name: string): YAMLMap {
  const stages = doc.get('stages');
  if (!isSeq(stages)) throw new EnsembleError(`${file}: no 'stages' list to update`);
  for (const s of stages.items) {
    if (isMap(s) && s.get('name') === name) return s;
  }
  throw new EnsembleError(`${file}: no stage '${name}' to update`);
}

/** Sets `key` inside the stage's `block` (batch/scale), creating the block if the stage has none. */
function setIn(doc: Document, stage: YAMLMap, block: 'batch' | 'scale', key: string, value: number): void {
  let m = stage.get(block);
  if (!isMap(m)) {
    m = doc.createNode({}) as YAMLMap;
    (m as YAMLMap).flow = true;
    stage.set(block, m);
  }
  (m as YAMLMap).set(key, value);
}

/** The YAML text with the given batch.max_size, batch.max_delay_ms, scale.instances and scale.threads set; comments and layout kept. */
export function applyUpdates(yamlText: string, file: string, updates: StageUpdate[]): string {
  const doc = parseDocument(yamlText, { keepSourceTokens: false });
  if (doc.errors.length) throw new EnsembleError(`${file}: ${doc.errors[0].message}`);
  for (const u of updates) {
    const node = stageNode(doc, file, u.stage);
    if (u.maxSize !== undefined) setIn(doc, node, 'batch', 'max_size', u.maxSize);
    if (u.maxDelayMs !== undefined) setIn(doc, node, 'batch', 'max_delay_ms', u.maxDelayMs);
    if (u.instances !== undefined) setIn(doc, node, 'scale', 'instances', u.instances);
    if (u.threads !== undefined) setIn(doc, node, 'scale', 'threads', u.threads);
  }
  return doc.toString({ lineWidth: 0 });
}

/**
 * `ensemble tune --write`: rewrite the manifest with the proposed settings,
 * then load it again; if it no longer loads, the original is put back and
 * the error says why.
 */
export async function writeProposal(file: string, updates: StageUpdate[]): Promise<Manifest> {
  const original = await readFile(file, 'utf8');
  const updated = applyUpdates(original, file, updates);
  await writeFile(file, updated);
  try {
    return await loadManifest(file);
  } catch (e) {
    await writeFile(file, original);
    throw new EnsembleError(`the tuned manifest did not load, ${file} left unchanged: ${e instanceof Error ? e.message : String(e)}`);
  }
}
