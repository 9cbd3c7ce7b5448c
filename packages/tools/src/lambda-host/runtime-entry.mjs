// One Lambda execution environment: the part of Lambda's Node.js runtime a
// handler can tell apart. It imports the handler module once (the init phase:
// module scope and top-level await run here), then runs one event at a time
// as the host sends them. Plain JavaScript, so a packaged bundle runs with no
// TypeScript loader; sources (.ts handlers) get tsx registered first.
//
//   argv: <handler file> <export name>
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';

const [file, exportName] = process.argv.slice(2);
if (!process.send || !file || !exportName) {
  console.error('runtime-entry: start me with child_process.fork(entry, [file, export])');
  process.exit(2);
}
const send = (msg) => process.send(msg);
// The host going away (even by SIGKILL) closes the channel: an environment does not outlive it.
process.on('disconnect', () => process.exit(0));

function errorDoc(e, fallbackType = 'Error') {
  if (e instanceof Error) {
    return {
      errorType: e.name || fallbackType,
      errorMessage: e.message,
      trace: typeof e.stack === 'string' ? e.stack.split('\n') : [],
    };
  }
  return { errorType: fallbackType, errorMessage: typeof e === 'string' ? e : JSON.stringify(e) ?? String(e), trace: [] };
}

function maxMemoryMb() {
  // maxRSS is in kilobytes.
  return Math.ceil(process.resourceUsage().maxRSS / 1024);
}

let handler;
try {
  if (/\.[mc]?ts$/.test(file)) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  const mod = await import(pathToFileURL(file).href);
  handler = mod[exportName];
  if (typeof handler !== 'function') {
    const err = new Error(`${basename(file).replace(/\.[^.]+$/, '')}.${exportName} is undefined or not exported`);
    err.name = 'Runtime.HandlerNotFound';
    throw err;
  }
} catch (e) {
  const doc = errorDoc(e, 'Runtime.ImportModuleError');
  if (e && typeof e === 'object' && e.code === 'ERR_MODULE_NOT_FOUND') doc.errorType = 'Runtime.ImportModuleError';
  send({ type: 'init-error', error: doc, initMs: performance.now() });
}

if (handler) {
  // performance.now() counts from process start: Lambda's Init Duration covers the runtime's start too.
  send({ type: 'ready', initMs: performance.now(), maxMemoryMb: maxMemoryMb() });
  process.on('message', async (msg) => {
    if (msg?.type !== 'invoke') return;
    const context = {
      awsRequestId: msg.requestId,
      functionName: msg.functionName,
      functionVersion: msg.version,
      invokedFunctionArn: msg.arn,
      memoryLimitInMB: String(msg.memoryMb),
      logGroupName: `/aws/lambda/${msg.functionName}`,
      logStreamName: msg.logStream,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, msg.deadline - Date.now()),
    };
    const t0 = performance.now();
    try {
      const event = JSON.parse(msg.payload);
      const out = await handler(event, context);
      const payload = JSON.stringify(out === undefined ? null : out);
      send({ type: 'result', id: msg.id, payload, durationMs: performance.now() - t0, maxMemoryMb: maxMemoryMb() });
    } catch (e) {
      send({ type: 'error', id: msg.id, error: errorDoc(e), durationMs: performance.now() - t0, maxMemoryMb: maxMemoryMb() });
    }
  });
}
