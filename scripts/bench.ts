import { startTempStack } from './lib/temp-stack.ts';
import { benchEvents, reportEvents } from './bench/events.ts';
import { benchFlood, reportFlood } from './bench/flood.ts';
import { benchQueue, reportQueue } from './bench/queue.ts';
import { benchSync, reportSync } from './bench/sync.ts';

// `npm run bench`: benchmarks on a temporary local stack (see README, "Benchmarks").
// Sections can be picked: `npm run bench -- queue`.

const sections = process.argv.slice(2);
const want = (name: string) => sections.length === 0 || sections.includes(name);

const stack = await startTempStack();
// Stopped early (Ctrl-C, a timeout): the temporary stack goes too, not only this process.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stack.destroy().finally(() => process.exit(130)));
}
const report: string[] = [
  `CESAR Edge benchmarks, ${new Date().toISOString()}, node ${process.version}`,
];
try {
  if (want('queue')) {
    const options = { jobs: 20_000, trickleJobs: 500, tricklePerSecond: 100 };
    report.push(reportQueue(await benchQueue(stack, options), options));
  }
  if (want('events')) {
    const options = { rows: 10_000, rounds: 9, latencyRows: 200, latencyPerSecond: 50 };
    report.push(reportEvents(await benchEvents(stack, options), options));
  }
  if (want('sync')) report.push(reportSync(await benchSync(stack, 100_000)));
  if (want('flood')) {
    report.push(reportFlood(await benchFlood(stack, { requests: 500, floodClients: 16 })));
  }
} finally {
  await stack.destroy();
}
console.log(report.join('\n\n'));
