/**
 * CPU time and peak memory of this process around a batch. process.cpuUsage
 * counts every thread of the process, so ONNX Runtime's intra-op threads are
 * in it; in a process that runs other work at the same time (the gateway)
 * that work is in it too.
 */
export interface UsageMark {
  cpu: NodeJS.CpuUsage;
}

export interface Usage {
  cpuMs: number;
  /** process.resourceUsage().maxRSS, which Node gives in kilobytes. */
  peakRssBytes: number;
}

export function markUsage(): UsageMark {
  return { cpu: process.cpuUsage() };
}

export function usageSince(mark: UsageMark): Usage {
  const d = process.cpuUsage(mark.cpu);
  return { cpuMs: (d.user + d.system) / 1000, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
}
