#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so `npx ensemble` works right after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

// Node 20 is supported here until the SDK drops it; Lambda runs Node 22. Keep the CLI's output clean.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
await import('../packages/core/src/cli/main.ts');
