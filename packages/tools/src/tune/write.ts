import { readFile, writeFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, parseDocument, type Pair, type YAMLMap } from 'yaml';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import { EnsembleError } from '@ensemble/core/errors.js';
import type { StageSettings } from './types.js';

/** What to set on one stage; absent fields are left alone. */
export type StageUpdate = Partial<StageSettings> & { stage: string };

interface Edit { start: number; end: number; text: string }

const FIELDS: [keyof StageSettings, 'batch' | 'scale', string][] = [
  ['maxSize', 'batch', 'max_size'],
  ['maxDelayMs', 'batch', 'max_delay_ms'],
  ['instances', 'scale', 'instances'],
  ['threads', 'scale', 'threads'],
];

function pairOf(map: YAMLMap, key: string): Pair | undefined {
  return map.items.find((p) => isScalar(p.key) && p.key.value === key) as Pair | undefined;
}

function lineEnd(text: string, at: number): number {
  const i = text.indexOf('\n', at);
  return i < 0 ? text.length : i;
}

function column(text: string, at: number): number {
  return at - (text.lastIndexOf('\n', at - 1) + 1);
}

/**
 * Where a node's own text ends. A block collection's range runs on over the
 * blank lines and indentation after it, so look at its last entry instead.
 */
function contentEnd(node: unknown): number {
  if ((isMap(node) || isSeq(node)) && !node.flow && node.items.length) {
    const last = node.items[node.items.length - 1] as unknown;
    if (isMap(node)) {
      const p = last as Pair;
      return contentEnd(p.value ?? p.key);
    }
    return contentEnd(last);
  }
  return rangeOf(node)[1];
}

function rangeOf(node: unknown): [number, number, number] {
  const r = (node as { range?: [number, number, number] }).range;
  if (!r) throw new EnsembleError('manifest node without a source position');
  return r;
}

/**
 * The YAML text with the given batch.max_size, batch.max_delay_ms,
 * scale.instances and scale.threads set. Edits are made in the text itself
 * (a value replaced, a key added to its block, a block added to its stage),
 * so comments, flow style and spacing stay exactly as they were.
 */
export function applyUpdates(text: string, file: string, updates: StageUpdate[]): string {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new EnsembleError(`${file}: ${doc.errors[0].message}`);
  const stages = doc.get('stages');
  if (!isSeq(stages)) throw new EnsembleError(`${file}: no 'stages' list to update`);
  const edits: Edit[] = [];
  for (const u of updates) {
    const stage = stages.items.find((s) => isMap(s) && s.get('name') === u.stage) as YAMLMap | undefined;
    if (!stage) throw new EnsembleError(`${file}: no stage '${u.stage}' to update`);
    for (const block of ['batch', 'scale'] as const) {
      const wanted = FIELDS.filter(([f, b]) => b === block && u[f] !== undefined).map(([f, , key]) => [key, String(u[f])] as const);
      if (!wanted.length) continue;
      const pair = pairOf(stage, block);
      if (!pair) {
        // A new block after the stage's last line, indented like its keys.
        const indent = ' '.repeat(column(text, rangeOf(stage.items[0].key)[0]));
        const at = lineEnd(text, contentEnd(stage));
        edits.push({ start: at, end: at, text: `\n${indent}${block}: { ${wanted.map(([k, v]) => `${k}: ${v}`).join(', ')} }` });
        continue;
      }
      const map = pair.value;
      if (!isMap(map)) throw new EnsembleError(`${file}: stage '${u.stage}': ${block} is not a map`);
      const missing: (readonly [string, string])[] = [];
      for (const [key, value] of wanted) {
        const p = pairOf(map, key);
        if (p && isScalar(p.value)) {
          const [s, e] = rangeOf(p.value);
          edits.push({ start: s, end: e, text: value });
        } else if (p) {
          throw new EnsembleError(`${file}: stage '${u.stage}': ${block}.${key} is not a plain value`);
        } else {
          missing.push([key, value]);
        }
      }
      if (!missing.length) continue;
      if (map.flow) {
        const last = map.items[map.items.length - 1];
        const at = last ? rangeOf(last.value ?? last.key)[1] : rangeOf(map)[0] + 1;
        const body = missing.map(([k, v]) => `${k}: ${v}`).join(', ');
        edits.push({ start: at, end: at, text: last ? `, ${body}` : ` ${body} ` });
      } else {
        const first = map.items[0];
        const indent = ' '.repeat(column(text, rangeOf(first.key)[0]));
        const last = map.items[map.items.length - 1];
        const at = lineEnd(text, contentEnd(last.value ?? last.key));
        edits.push({ start: at, end: at, text: missing.map(([k, v]) => `\n${indent}${k}: ${v}`).join('') });
      }
    }
  }
  // From the end backwards, so earlier offsets stay valid; at one spot, the edit made last goes in first so the text keeps their order.
  const order = new Map(edits.map((e, i) => [e, i]));
  edits.sort((a, b) => b.start - a.start || order.get(b)! - order.get(a)!);
  let out = text;
  for (const e of edits) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
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
