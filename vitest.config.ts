import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // onnxruntime-node and sharp are native addons: separate processes are safer than worker threads.
    pool: 'forks',
    // Vitest runs one file at a time on 2 cores (its default is cores - 1). Most files here wait on child
    // processes (servers, stage workers, emulators, Chromium) more than they compute, so two at a time on
    // 2 cores took the suite from 490 s to 383 and 425 s of vitest (README, "npm test").
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 60_000,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    hookTimeout: 120_000,
  },
});
