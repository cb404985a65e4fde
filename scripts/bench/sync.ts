import { pipeline } from 'node:stream/promises';
import { createSql } from '../../packages/shared/src/db.ts';
import { runSync } from '../../packages/shared/src/sync/run.ts';
import { describeTable, mirrorDdl } from '../../packages/shared/src/sync/schema.ts';
import type { TempStack } from '../lib/temp-stack.ts';
import { fmt } from './stats.ts';

// Push N agents-shaped rows to the mirror, against COPY ... TO STDOUT piped into COPY ...
// FROM STDIN between the same two databases, in the same run: the first push of a table (a
// bulk load with COPY, into an empty mirror table), then a push of the same N rows after all
// of them changed (guarded upserts of outbox pages over the rows the mirror has).

export interface SyncBenchResult {
  rows: number;
  pushMs: number;
  changedMs: number;
  copyMs: number;
}

export async function benchSync(stack: TempStack, rows: number): Promise<SyncBenchResult> {
  // Pools as the functions make them (createSql), for the push; COPY's baseline uses them too.
  const primary = createSql(stack.settings.SUPABASE_DB_URL!, { applicationName: 'bench', max: 4 });
  const mirror = createSql(stack.settings.COCKROACH_DB_URL!, { applicationName: 'bench', max: 4 });
  try {
    await primary`create schema if not exists bench`;
    await primary`create table bench.agents (like public.agents including all)`;
    await primary`insert into bench.agents (name, type, status, capabilities, metadata, mob_alias)
                  select 'agent ' || i, 'analyst', 'active', array['analysis', 'reporting'],
                         jsonb_build_object('model', 'local', 'rank', i), 'mob-' || i
                  from generate_series(1, ${rows}) i`;
    await primary`insert into cesar.sync_tables (table_name) values ('bench.agents')`;
    await primary`select cesar.watch('bench.agents')`;
    await mirror`create schema if not exists bench`;

    const p0 = performance.now();
    const [outcome] = await runSync({ primary, mirror, random: Math.random }, {
      tables: ['bench.agents'],
      direction: 'up',
      dryRun: false,
      batchSize: 1000,
      budgetMs: 600_000,
    });
    const pushMs = performance.now() - p0;
    if (outcome?.status !== 'completed') throw new Error(`push failed: ${JSON.stringify(outcome)}`);

    // Every row changes; marked dirty at once (their events are captured too, but with the
    // origin a restore uses, so that they do not also reach the outbox while this runs).
    await primary.begin(async (tx) => {
      await tx`select set_config('cesar.origin', 'restore', true)`;
      await tx`update bench.agents set status = 'idle'`;
    });
    await primary`select cesar.sync_backfill('bench.agents')`;
    // The stack's webhook function processes those events: let it finish, so that it does
    // not compete with the push for the machine.
    for (;;) {
      const [row] = await primary<
        Array<{ pending: boolean }>
      >`select cesar.events_pending() as pending`;
      if (!row!.pending) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const u0 = performance.now();
    const [changed] = await runSync({ primary, mirror, random: Math.random }, {
      tables: ['bench.agents'],
      direction: 'up',
      dryRun: false,
      batchSize: 1000,
      budgetMs: 600_000,
    });
    const changedMs = performance.now() - u0;
    if (changed?.status !== 'completed' || (changed as { updated: number }).updated !== rows) {
      throw new Error(`push of changed rows: ${JSON.stringify(changed)}`);
    }

    const shape = await describeTable(primary, 'bench.agents');
    await mirror.unsafe(mirrorDdl({ ...shape, table: 'bench.agents_copy' }));
    const c0 = performance.now();
    const source = await primary`copy bench.agents to stdout`.readable();
    const target = await mirror`copy bench.agents_copy from stdin`.writable();
    await pipeline(source, target);
    const copyMs = performance.now() - c0;
    const [[pushed], [copied]] = await Promise.all([
      mirror`select count(*)::int as n from bench.agents`,
      mirror`select count(*)::int as n from bench.agents_copy`,
    ]);
    if (pushed!.n !== rows || copied!.n !== rows) {
      throw new Error(`rows on the mirror: ${pushed!.n} pushed, ${copied!.n} copied`);
    }
    return { rows, pushMs, changedMs, copyMs };
  } finally {
    await primary.end();
    await mirror.end();
  }
}

export function reportSync(r: SyncBenchResult): string {
  const perSec = (ms: number) => fmt(r.rows / (ms / 1000), 0);
  return [
    `### Mirror sync: push ${r.rows.toLocaleString('en-US')} agents-shaped rows to the mirror`,
    '',
    '| method | ms | rows/s |',
    '| --- | ---: | ---: |',
    `| first push (bulk load: keyset pages of 10,000 rows, COPY into the empty mirror table) | ${
      fmt(r.pushMs, 0)
    } | ${perSec(r.pushMs)} |`,
    `| push after every row changed (outbox pages of 1,000, guarded upserts) | ${
      fmt(r.changedMs, 0)
    } | ${perSec(r.changedMs)} |`,
    `| COPY TO STDOUT piped into COPY FROM STDIN | ${fmt(r.copyMs, 0)} | ${perSec(r.copyMs)} |`,
    '',
    `first push / COPY: ${fmt(r.copyMs / r.pushMs, 2)}x of COPY's rate (target >= 0.5x)`,
    `push of changed rows / COPY: ${fmt(r.copyMs / r.changedMs, 2)}x of COPY's rate`,
  ].join('\n');
}
