import { carbonGrams, energyJoules } from '@ensemble/core/observability/profile.js';
import { processAssumptions } from '@ensemble/core/observability/assumptions.js';
import { fmt } from './util.js';

/**
 * Energy and carbon per 1,000 requests (or images) from the CPU time the
 * bench measured per one, with the same figures run records use
 * (docs/profiles.md): CPU time x watts per busy core, times the grid's intensity.
 */
export function per1000Note(cpuMsPerUnit: number, unit = 'requests'): string {
  const a = processAssumptions();
  const j = energyJoules(cpuMsPerUnit * 1000, a.wattsPerCore);
  return `${fmt(j)} J, ${fmt(carbonGrams(j, a.gridGPerKwh), 3)} gCO2e per 1,000 ${unit}`;
}

/** What the energy figures assume, for the report's notes. */
export function energyAssumptions(): string {
  return `Energy and carbon per 1,000 come from the measured CPU time (${processAssumptions().version}; docs/profiles.md for the figures and their sources).`;
}
