// When the local stack restarts something that died (a function, the gateway, the pg_net
// worker, the whole runtime): at once would spin on a part that dies at start, so the delay
// doubles from 0.5 s to 30 s, and a part that then ran stably for a minute starts over at
// 0.5 s. Delays are short because everything here is local and a restart is cheap.

export interface RestartPolicy {
  /** Call when the part (re)starts. */
  started(now?: number): void;
  /** Call when it died: the delay before the next start, in ms. */
  nextDelayMs(now?: number): number;
}

export function restartPolicy(
  { baseMs = 500, capMs = 30_000, stableMs = 60_000 } = {},
): RestartPolicy {
  let failures = 0;
  let startedAt = 0;
  return {
    started(now = Date.now()) {
      startedAt = now;
    },
    nextDelayMs(now = Date.now()) {
      if (now - startedAt >= stableMs) failures = 0;
      return Math.min(capMs, baseMs * 2 ** failures++);
    },
  };
}
