import type { EmfOptions } from '../observability/emf.js';
import type { Env } from '../storage/config.js';
import { ENV } from './environment.js';

/** The CloudWatch metrics' namespace and pace, from a function's environment (the gateway's and the stages' alike). */
export function emfOptions(env: Env, write?: (line: string) => void): EmfOptions {
  const every = Number(env[ENV.metricsEvery]);
  return { namespace: env[ENV.metricsNamespace], write, flushEvery: Number.isInteger(every) && every > 0 ? every : 1 };
}
