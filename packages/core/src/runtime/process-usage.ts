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

export function usageSince(mark: UsageMark, { peakRssWithinMs = 0 }: { peakRssWithinMs?: number } = {}): Usage {
  const u = process.cpuUsage();
  const now = performance.now();
  if (!(now - peakRss.at < peakRssWithinMs)) peakRss = { bytes: process.resourceUsage().maxRSS * 1024, at: now };
  return { cpuMs: (u.user + u.system - mark.cpuMicros) / 1000, peakRssBytes: peakRss.bytes };
}
