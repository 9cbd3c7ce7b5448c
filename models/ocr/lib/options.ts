/**
 * Typed reads of a function stage's free-form `options`. A wrong option is a
 * manifest mistake, so the message names the stage and the option.
 */
import type { FunctionStageContext } from '@ensemble/core';

export function numberOption(
  ctx: FunctionStageContext,
  key: string,
  fallback: number,
  range: { min?: number; max?: number; integer?: boolean } = {},
): number {
  const v = ctx.options?.[key];
  if (v === undefined || v === null) return fallback;
  const ok = typeof v === 'number' && Number.isFinite(v)
    && (range.integer !== true || Number.isInteger(v))
    && (range.min === undefined || v >= range.min)
    && (range.max === undefined || v <= range.max);
  if (!ok) {
    const kind = range.integer ? 'an integer' : 'a number';
    const bounds = [range.min !== undefined ? `>= ${range.min}` : '', range.max !== undefined ? `<= ${range.max}` : ''].filter(Boolean).join(' and ');
    throw new Error(`stage '${ctx.stage}': option ${key} must be ${kind}${bounds ? ` ${bounds}` : ''}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function stringOption(ctx: FunctionStageContext, key: string, fallback: string): string {
  const v = ctx.options?.[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string' || v === '') throw new Error(`stage '${ctx.stage}': option ${key} must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

export function booleanOption(ctx: FunctionStageContext, key: string, fallback: boolean): boolean {
  const v = ctx.options?.[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new Error(`stage '${ctx.stage}': option ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}
