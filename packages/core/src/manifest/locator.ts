import path from 'node:path';
import { ManifestError } from '../errors.js';
import type { Manifest } from './types.js';

/**
 * Builds ManifestErrors for one YAML file and remembers the line of every
 * field the schema read, so errors found later (DAG, ONNX metadata) can still
 * point at a line without the Manifest type carrying positions.
 */
export class Locator {
  /** The file as messages show it: relative to the working directory when inside it. */
  readonly display: string;
  private readonly lines = new Map<string, number>();

  constructor(readonly file: string) {
    this.display = displayPath(file);
  }

  set(where: string, field: string, line: number | undefined): void {
    if (line && line > 0 && !this.lines.has(key(where, field))) this.lines.set(key(where, field), line);
  }

  /** Line of `field` in `where`, falling back to its closest recorded parent. */
  line(where: string, field: string): number | undefined {
    for (let f = field; f; f = parentField(f)) {
      const line = this.lines.get(key(where, f));
      if (line) return line;
    }
    return this.lines.get(key(where, ''));
  }

  error(where: string, field: string, message: string, line?: number): ManifestError {
    const at = line ?? this.line(where, field);
    const text = `${field ? `${field}: ` : ''}${message}${at ? ` (line ${at})` : ''}`;
    return new ManifestError(this.display, where, text);
  }
}

export const PIPELINE = 'pipeline';
export const DEFAULTS = 'defaults';
export function stageWhere(name: string): string {
  return `stage '${name}'`;
}

const locators = new WeakMap<Manifest, Locator>();

export function attachLocator(m: Manifest, loc: Locator): void {
  locators.set(m, loc);
}

/** The Locator a loaded manifest came with, or a fresh one for hand-built manifests. */
export function locatorOf(m: Manifest): Locator {
  return locators.get(m) ?? new Locator(m.file);
}

export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

function key(where: string, field: string): string {
  return `${where}\u0000${field}`;
}

function parentField(field: string): string {
  const cut = Math.max(field.lastIndexOf('.'), field.lastIndexOf('['));
  return cut > 0 ? field.slice(0, cut) : '';
}
