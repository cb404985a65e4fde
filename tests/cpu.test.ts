import { describe, expect, it } from 'vitest';
import { cpuBudget, processCpuMs, requestStarted } from '../packages/shared/src/cpu.ts';

// The runtime stops an isolate once the CPU it used since its oldest request in flight began
// passes the limit (scripts/local/limits-monitor.ts); a function's budget counts from there.

function burn(ms: number) {
  const start = processCpuMs();
  while (processCpuMs() - start < ms) Math.sqrt(Math.random());
}

describe('cpuBudget', () => {
  it('counts from the start of the oldest request in flight, and from now once none is', () => {
    const first = requestStarted();
    burn(60);
    const second = requestStarted();
    const later = cpuBudget(50);
    // Created after 60 ms of CPU the first request's time spent: already over 50.
    expect(later.spentMs()).toBeGreaterThanOrEqual(60);
    expect(later.exhausted()).toBe(true);
    first();
    second();
    const alone = cpuBudget(50);
    expect(alone.exhausted()).toBe(false);
    burn(60);
    expect(alone.exhausted()).toBe(true);
  });
});
