/**
 * What an instance does as it goes away: modules register a hook (http/metrics.ts writes the
 * request counts it holds), and the function runtime (runtime.ts) runs them when hosted
 * announces the end with `beforeunload` or the local runtime sends SIGTERM.
 */
const hooks = new Set<() => Promise<void>>();

export function onShutdown(hook: () => Promise<void>): void {
  hooks.add(hook);
}

export async function runShutdownHooks(): Promise<void> {
  await Promise.all([...hooks].map((hook) => hook().catch(() => {})));
}
