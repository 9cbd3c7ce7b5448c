#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so `npx ensemble` works right after `npm ci` with no build step.
import { register } from 'tsx/esm/api';
import { register as registerCjs } from 'tsx/cjs/api';

// Node 20 is supported here until the SDK drops it; Lambda runs Node 22. Keep the CLI's output clean.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
// A stage module in a folder without `"type": "module"` is CommonJS to Node; without tsx's CJS
// hook too, importing it fails ("Cannot require() ES Module ... in a cycle").
registerCjs();
await import('../packages/tools/src/cli/main.ts');
