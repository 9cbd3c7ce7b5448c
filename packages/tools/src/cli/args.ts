import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EnsembleError } from '@ensemble/core/errors.js';

/** A CLI command: its own flags, its own --help, one job. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Flag descriptions for --help, in order. */
  help: [flag: string, text: string][];
  options: NonNullable<ParseArgsConfig['options']>;
  run(args: { values: Record<string, unknown>; positionals: string[] }): Promise<number | void>;
}

export class UsageError extends EnsembleError {
  constructor(message: string) { super(message, 'usage'); }
}

export function parse(cmd: Command, argv: string[]) {
  try {
    return parseArgs({ args: argv, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${e instanceof Error ? e.message : String(e)}\n\n${helpText(cmd)}`);
  }
}

export function helpText(cmd: Command): string {
  const width = Math.max(0, ...cmd.help.map(([f]) => f.length));
  const lines = [`${cmd.summary}`, '', `usage: ensemble ${cmd.usage}`];
  if (cmd.help.length) {
    lines.push('', 'options:');
    for (const [f, t] of cmd.help) lines.push(`  ${f.padEnd(width)}  ${t}`);
  }
  lines.push(`  ${'-h, --help'.padEnd(width)}  show this help`);
  return lines.join('\n');
}

export function str(v: unknown, fallback: string): string { return typeof v === 'string' ? v : fallback; }

export function int(v: unknown, fallback: number, flag: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a whole number, got '${String(v)}'`);
  return n;
}
