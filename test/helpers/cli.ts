/**
 * Running the `ensemble` command as a user does: `node bin/ensemble.mjs ...`
 * from the repository root, in a clean environment (local emulators, never
 * AWS settings inherited from the shell).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { REPO } from './pipelines.js';

export const BIN = 'bin/ensemble.mjs';

/** process.env without anything that would point the CLI at AWS or another endpoint. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('ENSEMBLE_') || k.startsWith('AWS_')) continue;
    env[k] = v;
  }
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  return env;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a short command to completion. */
export function runCli(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ensemble ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Everything the server wrote to stdout so far (the access log). */
  stdout(): string;
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `ensemble serve` with the given flags; resolves once it has logged the URL it
 * serves on and /v2/health/ready answers 200.
 */
export async function startServe(args: string[], timeoutMs = 120_000): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { cwd: REPO, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  let gone = false;
  void exited.then(() => { gone = true; });
  const deadline = Date.now() + timeoutMs;
  const fail = (why: string) => {
    if (!gone) child.kill('SIGKILL');
    return new Error(`ensemble serve ${why}\nstdout: ${out}\nstderr: ${err}`);
  };
  let url: string | undefined;
  while (!url) {
    if (gone) throw fail('exited before serving');
    if (Date.now() > deadline) throw fail(`did not log its URL within ${timeoutMs} ms`);
    url = /serving .* on (http:\/\/\S+)/.exec(err)?.[1];
    if (!url) await new Promise((r) => setTimeout(r, 50));
  }
  for (;;) {
    if (gone) throw fail('exited before it was ready');
    if (Date.now() > deadline) throw fail(`was not ready within ${timeoutMs} ms`);
    const ready = await fetch(`${url}/v2/health/ready`).then((r) => r.status === 200, () => false);
    if (ready) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url, stderr: () => err, stdout: () => out, exited };
}
