import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { RuntimeLimits, ShutdownReason } from '../../packages/shared/src/limits.ts';

// How the local runtime measures its function processes against the hosted limits
// (packages/shared/src/limits.ts). Each Deno process is one isolate. Linux accounts every
// process's CPU time in /proc/<pid>/stat (utime + stime, in clock ticks, all threads) and its
// resident memory in /proc/<pid>/statm; functions.ts samples them every SAMPLE_MS while an
// isolate has requests in flight and every IDLE_SAMPLE_MS otherwise, and asks verdict() what
// to do.
//
// Concurrent requests share an isolate's CPU: a request is over the limit when its isolate
// (all requests on it, the runtime's own threads and GC included) used more than cpuMs since
// that request started. That is never more lenient than hosted, which counts a request's own
// CPU: the sum over a process is at least any one request's part.

/** Sampling period while requests are in flight: a burner overshoots the limit by at most this. */
export const SAMPLE_MS = 25;
/** Sampling period of an idle isolate (wall clock and memory only need coarse checks). */
export const IDLE_SAMPLE_MS = 250;

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
    } catch {
      ticksPerSecond = 100; // USER_HZ on every Linux this runs on
    }
  }
  return ticksPerSecond;
}
const PAGE_BYTES = 4096;

export interface ProcSample {
  /** CPU time the process used since it started (user + system, all threads), in ms. */
  cpuMs: number;
  /** Resident memory, in MB. */
  rssMb: number;
}

/** The process's CPU and memory now; null when it is gone (or there is no /proc). */
export function readProc(pid: number): ProcSample | null {
  const cpuMs = readCpuMs(pid);
  if (cpuMs === null) return null;
  try {
    const resident = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    if (!Number.isFinite(resident)) return null;
    return { cpuMs, rssMb: (resident * PAGE_BYTES) / 2 ** 20 };
  } catch {
    return null;
  }
}

/** The process's CPU time (user + system) in ms, from /proc/<pid>/stat alone; null if gone. */
export function readCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of the whole line (utime, stime) are 11 and 12 after the name.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / clockTicks() : null;
  } catch {
    return null;
  }
}

/** What the monitor knows of one isolate when it samples it. */
export interface IsolateView {
  /** CPU ms the process had used when it started listening (boot is not charged). */
  readyCpuMs: number;
  /** When it started listening (ms since the epoch). */
  readyAt: number;
  retired: boolean;
  /** The process's CPU ms at the start of each request in flight. */
  requestStartsCpuMs: number[];
}

export type Verdict =
  | { action: 'stop'; reason: ShutdownReason; detail: string }
  | { action: 'retire'; detail: string }
  | { action: 'none' };

/** The hosted limit's name in the log line, as hosted logs it. */
export const REASON_TEXT: Record<ShutdownReason, string> = {
  CPUTime: 'CPU time limit',
  Memory: 'memory limit',
  WallClockTime: 'wall clock limit',
};

/**
 * Pure: what to do with an isolate given a sample. Hard limits first (they stop the isolate
 * and answer 546), then the soft ones (retire: no new requests, finish the rest, exit).
 */
export function verdict(
  sample: ProcSample,
  isolate: IsolateView,
  limits: RuntimeLimits,
  now: number,
): Verdict {
  if (sample.rssMb > limits.memoryMb) {
    return {
      action: 'stop',
      reason: 'Memory',
      detail: `${limits.memoryMb} MB; resident ${Math.round(sample.rssMb)} MB`,
    };
  }
  const oldestStart = Math.min(...isolate.requestStartsCpuMs);
  if (sample.cpuMs - oldestStart > limits.cpuMs) {
    return {
      action: 'stop',
      reason: 'CPUTime',
      detail: `${limits.cpuMs} ms; ${Math.round(sample.cpuMs - oldestStart)} ms used`,
    };
  }
  const age = now - isolate.readyAt;
  if (age >= limits.wallClockMs) {
    return {
      action: 'stop',
      reason: 'WallClockTime',
      detail: `${limits.wallClockMs / 1000} s`,
    };
  }
  if (isolate.retired) return { action: 'none' };
  if (sample.cpuMs - isolate.readyCpuMs >= limits.cpuSoftMs) {
    return {
      action: 'retire',
      detail: `CPU soft limit (${limits.cpuSoftMs} ms; ${
        Math.round(sample.cpuMs - isolate.readyCpuMs)
      } ms used)`,
    };
  }
  if (age >= limits.wallClockMs / 2) {
    return { action: 'retire', detail: `half its wall clock (${limits.wallClockMs / 2000} s)` };
  }
  return { action: 'none' };
}

/**
 * Pure: has a serving isolate used half of its CPU soft limit, so that a standby should boot
 * now to take over when it retires? Half: at a few hundred requests a second the second half
 * lasts about a second, what a local Deno process needs to boot on a loaded 2-core machine.
 * The wall clock is left out: an isolate retiring by age (200 s on the paid plan) is an idle
 * one as often as not, and a request that waits for its successor once is no tail.
 */
export function nearRetirement(cpuUsedMs: number, limits: RuntimeLimits): boolean {
  return cpuUsedMs >= limits.cpuSoftMs / 2;
}
