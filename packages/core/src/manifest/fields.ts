import type { Locator } from './locator.js';
import { describeNode, type YNode } from './parse.js';
import { didYouMean } from './suggest.js';

/**
 * Typed readers over the YAML tree. Each takes the scope (file + stage) and
 * the dotted field path, so a failure names all three.
 */
export interface Scope {
  loc: Locator;
  where: string;
  /**
   * False when files a manifest names as data (drift reference files) are
   * not read: for the command that writes them.
   */
  readReferences?: boolean;
}

export function child(field: string, key: string): string {
  return field ? `${field}.${key}` : key;
}

export function fail(s: Scope, field: string, message: string, node?: YNode): never {
  throw s.loc.error(s.where, field, message, node?.line || undefined);
}

/**
 * A mapping with a fixed set of keys; anything else is a typo or a field we
 * don't support, both worth stopping for. `null` values count as absent.
 * `hints` explains keys that are valid elsewhere (e.g. `module` on an onnx stage).
 */
export function readMap(
  s: Scope, node: YNode, field: string, allowed: readonly string[], hints: Record<string, string> = {},
): Record<string, YNode | undefined> {
  if (node.kind !== 'map') fail(s, field, `expected a mapping, got ${describeNode(node)}`, node);
  s.loc.set(s.where, field, node.line);
  const out: Record<string, YNode | undefined> = {};
  for (const [key, { keyLine, value }] of node.entries) {
    const f = child(field, key);
    if (!allowed.includes(key)) {
      const why = hints[key] ?? `unknown key${didYouMean(key, allowed) || ` (expected one of: ${allowed.join(', ')})`}`;
      throw s.loc.error(s.where, f, why, keyLine);
    }
    s.loc.set(s.where, f, keyLine);
    out[key] = value.kind === 'scalar' && value.value === null ? undefined : value;
  }
  return out;
}

export function need(s: Scope, node: YNode | undefined, field: string, what = 'required'): YNode {
  if (node === undefined) fail(s, field, what);
  return node;
}

export function readString(s: Scope, node: YNode, field: string, opts: { numbers?: boolean } = {}): string {
  if (node.kind === 'scalar' && typeof node.value === 'string') {
    if (node.value === '') fail(s, field, 'must not be empty', node);
    return node.value;
  }
  // Written as a number (version: 1.10): keep the text, not the float.
  if (opts.numbers && node.kind === 'scalar' && typeof node.value === 'number') {
    return node.source ?? String(node.value);
  }
  return fail(s, field, `expected a string, got ${describeNode(node)}`, node);
}

export function readNumber(s: Scope, node: YNode, field: string, min = -Infinity, max = Infinity): number {
  if (node.kind !== 'scalar' || typeof node.value !== 'number' || !Number.isFinite(node.value)) {
    fail(s, field, `expected a number, got ${describeNode(node)}`, node);
  }
  const v = node.value;
  if (v < min) fail(s, field, `must be >= ${min}, got ${v}`, node);
  if (v > max) fail(s, field, `must be <= ${max}, got ${v}`, node);
  return v;
}

export function readInt(s: Scope, node: YNode, field: string, min = -Infinity, max = Infinity): number {
  const v = readNumber(s, node, field, min, max);
  if (!Number.isSafeInteger(v)) fail(s, field, `expected an integer, got ${v}`, node);
  return v;
}

export function readBool(s: Scope, node: YNode, field: string): boolean {
  if (node.kind !== 'scalar' || typeof node.value !== 'boolean') {
    fail(s, field, `expected true or false, got ${describeNode(node)}`, node);
  }
  return node.value;
}

export function readEnum<T extends string>(s: Scope, node: YNode, field: string, values: readonly T[]): T {
  const v = node.kind === 'scalar' && typeof node.value === 'string' ? node.value : undefined;
  if (v !== undefined && (values as readonly string[]).includes(v)) return v as T;
  const got = v ?? describeNode(node);
  fail(s, field, `expected one of ${values.join(', ')}, got ${got}${v ? didYouMean(v, values) : ''}`, node);
}

export function readList(s: Scope, node: YNode, field: string): YNode[] {
  if (node.kind !== 'seq') fail(s, field, `expected a list, got ${describeNode(node)}`, node);
  s.loc.set(s.where, field, node.line);
  node.items.forEach((item, i) => s.loc.set(s.where, `${field}[${i}]`, item.line));
  return node.items;
}
