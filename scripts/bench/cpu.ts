import { readProc } from '../local/limits-monitor.ts';
import { stackProcesses } from '../local/stack-processes.ts';

// The CPU time a function's processes spend while a benchmark runs, read from /proc (utime +
// stime of every thread) as the runtime's limits monitor reads it. Under the enforced limits
// a function is served by a succession of isolates (one retires past its CPU soft limit and a
// fresh one takes the next requests), so the meter follows every process of the function:
// those alive at the start from their reading then, those started later from their start
// (their boot included: it is CPU the work cost). A process is read every SAMPLE_MS until it
// is gone; what it spent after its last reading is missed (at most SAMPLE_MS of it).

const SAMPLE_MS = 20;
const RESCAN_MS = 100;

export interface CpuReading {
  cpuMs: number;
  /** The function's processes seen (isolates). */
  processes: number;
}

export function functionCpuMeter(localDir: string, fn: string) {
  const baseline = new Map<number, number>();
  const latest = new Map<number, number>();
  const find = () =>
    stackProcesses(localDir).filter((p) => p.role === 'function' && p.fn === fn).map((p) => p.pid);
  for (const pid of find()) {
    const cpu = readProc(pid)?.cpuMs;
    if (cpu !== undefined) baseline.set(pid, cpu), latest.set(pid, cpu);
  }
  const sample = () => {
    for (const pid of latest.keys()) {
      const cpu = readProc(pid)?.cpuMs;
      if (cpu !== undefined) latest.set(pid, cpu);
    }
  };
  const rescan = () => {
    for (const pid of find()) {
      if (!latest.has(pid)) {
        baseline.set(pid, 0);
        latest.set(pid, readProc(pid)?.cpuMs ?? 0);
      }
    }
  };
  const sampler = setInterval(sample, SAMPLE_MS);
  const scanner = setInterval(rescan, RESCAN_MS);
  return {
    stop(): CpuReading {
      clearInterval(sampler);
      clearInterval(scanner);
      rescan();
      sample();
      let cpuMs = 0;
      for (const [pid, cpu] of latest) cpuMs += cpu - baseline.get(pid)!;
      return { cpuMs, processes: latest.size };
    },
  };
}
