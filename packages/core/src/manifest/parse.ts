import { Alias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import type { Locator } from './locator.js';
import { PIPELINE } from './locator.js';

/**
 * The YAML tree with a line number on every node. The schema reads this
 * instead of plain JS values so every error can say where it is, and so the
 * `yaml` package stays behind this one file.
 */
export type YNode = YMap | YSeq | YScalar;

export interface YMap {
  kind: 'map';
  line: number;
  entries: Map<string, { keyLine: number; value: YNode }>;
}
export interface YSeq {
  kind: 'seq';
  line: number;
  items: YNode[];
}
export interface YScalar {
  kind: 'scalar';
  line: number;
  value: string | number | boolean | null;
  /** The text as written, so `version: 1.10` can stay "1.10". */
  source?: string;
}

export function parseYaml(text: string, loc: Locator): YNode {
  const lines = new LineCounter();
  // uniqueKeys rejects a key written twice, which would otherwise silently win.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const bad = doc.errors[0];
  if (bad) {
    const at = lines.linePos(bad.pos[0]).line;
    throw loc.error(PIPELINE, '', `invalid YAML: ${bad.message.split('\n')[0]}`, at || undefined);
  }
  if (doc.contents === null) throw loc.error(PIPELINE, '', 'the file is empty');
  return convert(doc, doc.contents as YamlNode, lines, loc, 0);
}

function convert(doc: Document, node: YamlNode, lines: LineCounter, loc: Locator, depth: number): YNode {
  // Aliases are resolved by copying; a depth cap stops alias loops.
  if (depth > 64) throw loc.error(PIPELINE, '', 'YAML nested too deeply (alias loop?)');
  const line = node.range ? lines.linePos(node.range[0]).line : 0;
  if (node instanceof Alias) {
    const target = node.resolve(doc);
    if (!target) throw loc.error(PIPELINE, '', `unresolved alias *${node.source}`, line);
    return convert(doc, target as YamlNode, lines, loc, depth + 1);
  }
  if (isMap(node)) {
    const entries = new Map<string, { keyLine: number; value: YNode }>();
    for (const pair of node.items) {
      const k = pair.key as YamlNode | null;
      if (!isScalar(k) || (k.value !== null && typeof k.value === 'object')) {
        throw loc.error(PIPELINE, '', 'map keys must be plain strings', line);
      }
      const name = k.source ?? String(k.value);
      const keyLine = k.range ? lines.linePos(k.range[0]).line : line;
      const value: YNode = pair.value === null || pair.value === undefined
        ? { kind: 'scalar', line: keyLine, value: null }
        : convert(doc, pair.value as YamlNode, lines, loc, depth + 1);
      entries.set(name, { keyLine, value });
    }
    return { kind: 'map', line, entries };
  }
  if (isSeq(node)) {
    return { kind: 'seq', line, items: node.items.map((n) => convert(doc, n as YamlNode, lines, loc, depth + 1)) };
  }
  if (isScalar(node)) {
    const v = node.value;
    if (v === null || v === undefined) return { kind: 'scalar', line, value: null };
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      return { kind: 'scalar', line, value: v, source: node.source };
    }
    if (typeof v === 'bigint') return { kind: 'scalar', line, value: Number(v), source: node.source };
    throw loc.error(PIPELINE, '', `unsupported YAML value ${String(v)}`, line);
  }
  throw loc.error(PIPELINE, '', 'unsupported YAML node', line);
}

/** Plain JS value of a node, for free-form fields such as `options`. */
export function toPlain(node: YNode): unknown {
  switch (node.kind) {
    case 'scalar': return node.value;
    case 'seq': return node.items.map(toPlain);
    case 'map': {
      const out: Record<string, unknown> = {};
      for (const [k, { value }] of node.entries) out[k] = toPlain(value);
      return out;
    }
  }
}

export function describeNode(node: YNode): string {
  if (node.kind === 'map') return 'a mapping';
  if (node.kind === 'seq') return 'a list';
  if (node.value === null) return 'nothing';
  if (typeof node.value === 'string') return `the string '${node.value}'`;
  if (typeof node.value === 'number') return `the number ${node.source ?? node.value}`;
  return String(node.value);
}
