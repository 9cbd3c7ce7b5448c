import { openSync, readSync } from 'node:fs';

/**
 * CPU time and peak memory of this process around a batch. The kernel's
 * count (getrusage) covers every thread of the process, so ONNX Runtime's intra-op threads are
 * in it; in a process that runs other work at the same time (the gateway)
 * that work is in it too.
 */
export interface UsageMark {
  /** CPU time so far, user + system, in microseconds. */
  cpuMicros: number;
}

export interface Usage {
  cpuMs: number;
  /** process.resourceUsage().maxRSS, which Node gives in kilobytes. */
  peakRssBytes: number;
}

/*
 * Each of these asks the kernel (getrusage), which sums every thread of the
 * process: in a gateway running sessions inline they are made per batch, and
 * showed in its profile. So one call at each end of a batch for the CPU time;
 * the peak RSS, which only grows, may be asked to be no older than
 * `peakRssWithinMs` instead of read again (default 0: read every time).
 */
let peakRss = { bytes: 0, at: -Infinity };

export function markUsage(): UsageMark {
  const u = process.cpuUsage();
  return { cpuMicros: u.user + u.system };
}

/** Usage since `mark`; without a mark only the peak RSS (cpuMs 0), for a caller that counts CPU time another way. */
export function usageSince(mark: UsageMark | undefined, { peakRssWithinMs = 0 }: { peakRssWithinMs?: number } = {}): Usage {
  let cpuMs = 0;
  if (mark) {
    const u = process.cpuUsage();
    cpuMs = (u.user + u.system - mark.cpuMicros) / 1000;
  }
  const now = performance.now();
  if (!(now - peakRss.at < peakRssWithinMs)) peakRss = { bytes: process.resourceUsage().maxRSS * 1024, at: now };
  return { cpuMs, peakRssBytes: peakRss.bytes };
}

/**
 * CPU time of the calling thread so far, in microseconds, or undefined where
 * it cannot be read cheaply. For a batch that runs on the event loop's own
 * thread (an ONNX session with one intra-op thread runs inside session.run's
 * callback on it): process.cpuUsage() has the kernel sum every thread of the
 * process, and in a loaded gateway that read blocked the event loop for
 * milliseconds now and then (p90 2-3 ms at load 7 on 2 cores), where this
 * one reads the thread's own count. Node 23.9+ has process.threadCpuUsage;
 * before it, Linux's /proc/thread-self/schedstat (nanoseconds on CPU, the
 * running thread's count as of its last tick or switch: up to a tick behind,
 * as much at the start as at the end of a batch).
 */
export function threadCpuMicros(): number | undefined {
  if (threadCpuUsage) {
    const u = threadCpuUsage();
    return u.user + u.system;
  }
  if (schedstat === null) return undefined;
  try {
    // Opened by the thread that asks, so it names that thread's file; a worker thread has its own module and so its own.
    schedstat ??= openSync('/proc/thread-self/schedstat', 'r');
    const n = readSync(schedstat, schedBuf, 0, schedBuf.length, 0);
    let ns = 0;
    let i = 0;
    for (; i < n; i++) {
      const d = schedBuf[i] - 48;
      if (d < 0 || d > 9) break;
      ns = ns * 10 + d;
    }
    if (i === 0) throw new Error('no count');
    return ns / 1000;
  } catch {
    schedstat = null;
    return undefined;
  }
}

const threadCpuUsage = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage?.bind(process);
let schedstat: number | null | undefined;
const schedBuf = Buffer.alloc(64);
