import { readFileSync, readdirSync } from 'node:fs';

/** One process of a running `ensemble serve`: the gateway itself or one of its children. */
export interface ProcessSample {
  pid: number;
  /** 'gateway', the stage a worker serves (its argv carries `ensemble:<stage>`), or the child's program name. */
  role: string;
  /** Resident set size in MiB (VmRSS from /proc). */
  rssMb: number;
}

/** VmRSS of a process in MiB; undefined once it is gone (or where /proc is not there). */
export function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The direct children of a process, from every thread's `children` list. */
export function childPids(pid: number): number[] {
  const out = new Set<number>();
  let tasks: string[] = [];
  try { tasks = readdirSync(`/proc/${pid}/task`); } catch { return []; }
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) out.add(Number(c));
    } catch { /* the thread ended meanwhile */ }
  }
  return [...out];
}

/** What a child is: a stage worker names its stage in its argv (`ensemble:<stage>`); anything else by its program. */
export function childRole(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const tag = argv.find((a) => a.startsWith('ensemble:'));
    if (tag) return `worker ${tag.slice('ensemble:'.length)}`;
    return (argv[0] ?? 'unknown').split('/').pop() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The gateway and each of its children, now. */
export function sampleServer(gatewayPid: number): ProcessSample[] {
  const out: ProcessSample[] = [];
  const g = rssMb(gatewayPid);
  if (g !== undefined) out.push({ pid: gatewayPid, role: 'gateway', rssMb: g });
  for (const pid of childPids(gatewayPid)) {
    const r = rssMb(pid);
    if (r !== undefined) out.push({ pid, role: childRole(pid), rssMb: r });
  }
  return out;
}

/** Samples the server every `everyMs` and keeps each process's peak and the peak of the sum. */
export function peakSampler(gatewayPid: number, everyMs: number): { stop(): { perProcess: Map<number, ProcessSample>; peakTotalMb: number } } {
  const perProcess = new Map<number, ProcessSample>();
  let peakTotalMb = 0;
  const take = () => {
    const now = sampleServer(gatewayPid);
    peakTotalMb = Math.max(peakTotalMb, now.reduce((a, s) => a + s.rssMb, 0));
    for (const s of now) {
      const prev = perProcess.get(s.pid);
      if (!prev || s.rssMb > prev.rssMb) perProcess.set(s.pid, s);
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { perProcess, peakTotalMb };
    },
  };
}
