// Worker processes start as plain Node. tsx's CommonJS hook compiles the worker's TypeScript on this
// thread; its ESM hook (module.register) would start a loader thread, a second V8 isolate that costs
// every worker about 25 MB of RSS. Nothing the worker loads needs ESM (no import.meta, no top-level await);
// function stages run beside the model are required the same way (transport/colocated-worker.ts).
require('tsx/cjs/api').register();
require('./stage-worker.ts');
