import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/**
 * `ensemble serve` as its own process, as an operator runs it: the soak
 * kills it, signals it and restarts it on the same data folder.
 */
export class GatewayProcess {
  private child: ChildProcess | undefined;
  private expectedExit = false;
  /** Exits nobody asked for (a crash), with their code or signal. */
  readonly crashes: string[] = [];
  readonly stderr: string[] = [];

  constructor(private readonly root: string, readonly dataDir: string, readonly modelsDir: string, readonly port: number) {}

  get url(): string { return `http://127.0.0.1:${this.port}`; }
  get pid(): number | undefined { return this.child?.pid; }

  async start(): Promise<void> {
    this.expectedExit = false;
    const child = spawn(process.execPath, [path.join(this.root, 'bin/ensemble.mjs'), 'serve', '--port', String(this.port),
      '--data', this.dataDir, '--models', this.modelsDir, '--quiet'], { cwd: this.root, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      this.stderr.push(s);
      if (this.stderr.length > 200) this.stderr.shift();
    });
    child.once('exit', (code, signal) => {
      if (!this.expectedExit) this.crashes.push(signal ?? `code ${code}`);
    });
    const until = Date.now() + 120_000;
    while (Date.now() < until) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the gateway exited while starting: ${this.stderr.join('').slice(-2000)}`);
      const ok = await fetch(`${this.url}/v2/health/ready`).then((r) => r.ok, () => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('the gateway did not become ready within 120 s');
  }

  /** SIGKILL (a crash the operator causes) or SIGTERM (a shutdown); resolves with the exit code or signal. */
  stop(signal: 'SIGKILL' | 'SIGTERM'): Promise<string> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve('not running');
    this.expectedExit = true;
    return new Promise((resolve) => {
      child.once('exit', (code, sig) => resolve(sig ?? `code ${code}`));
      child.kill(signal);
    });
  }

  /** Worker processes the gateway started (its children), for kill -9. */
  workerPids(): number[] {
    const pid = this.child?.pid;
    if (!pid) return [];
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** Resident memory of the gateway process itself, in MB. */
  rssMb(): number {
    const pid = this.child?.pid;
    if (!pid) return 0;
    try {
      const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      return kb ? Math.round(Number(kb) / 1024) : 0;
    } catch {
      return 0;
    }
  }
}

/** A free loopback port (the OS picks one, then it is released for the gateway). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
