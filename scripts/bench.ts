import { startTempStack } from './lib/temp-stack.ts';
import { benchApi, reportApi } from './bench/api.ts';
import { benchEvents, reportEvents } from './bench/events.ts';
import { benchFlood, reportFlood } from './bench/flood.ts';
import { benchQueue, reportQueue } from './bench/queue.ts';
import { benchSchedules, reportSchedules } from './bench/schedules.ts';
import { benchSync, reportSync } from './bench/sync.ts';
import { reportSummary } from './bench/summary.ts';

// `npm run bench`: benchmarks on a temporary local stack (see README, "Benchmarks").
// Sections can be picked: `npm run bench -- queue`. The schedules section starts a database
// of its own and needs no stack: `npm run bench -- schedules` starts none.

const sections = process.argv.slice(2);
const want = (name: string) => sections.length === 0 || sections.includes(name);

const STACK_SECTIONS = ['queue', 'events', 'sync', 'api', 'flood'];
const stack = STACK_SECTIONS.some(want) ? await startTempStack() : undefined;
// Stopped early (Ctrl-C, a timeout): the temporary stack goes too, not only this process.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(
    signal,
    () => void (stack?.destroy() ?? Promise.resolve()).finally(() => process.exit(130)),
  );
}
const report: string[] = [
  `CESAR Edge benchmarks, ${new Date().toISOString()}, node ${process.version}`,
];
const measured: Parameters<typeof reportSummary>[0] = {};
try {
  if (want('queue')) {
    const options = { jobs: 20_000, trickleJobs: 500, tricklePerSecond: 100 };
    const result = await benchQueue(stack!, options);
    measured.queue = { result, jobs: options.jobs };
    report.push(reportQueue(result, options));
  }
  if (want('events')) {
    const options = {
      rows: 10_000,
      rounds: 9,
      latencyRows: 200,
      latencyPerSecond: 50,
      sustainedRows: 6_000,
      sustainedPerSecond: 200,
    };
    measured.events = await benchEvents(stack!, options);
    report.push(reportEvents(measured.events, options));
  }
  if (want('sync')) {
    measured.sync = await benchSync(stack!, 100_000);
    report.push(reportSync(measured.sync));
  }
  if (want('api')) {
    measured.api = await benchApi(stack!, { connections: 20, seconds: 10 });
    report.push(reportApi(measured.api));
  }
  if (want('flood')) {
    report.push(reportFlood(await benchFlood(stack!, { requests: 500, floodClients: 16 })));
  }
  if (want('schedules')) {
    measured.schedules = await benchSchedules({ sizes: [10, 100, 1_000, 5_000] });
    report.push(reportSchedules(measured.schedules));
  }
  report.push(reportSummary(measured));
} finally {
  await stack?.destroy();
}
console.log(report.join('\n\n'));
