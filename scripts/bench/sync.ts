import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { runSync } from '../../packages/shared/src/sync/run.ts';
import { describeTable, mirrorDdl } from '../../packages/shared/src/sync/schema.ts';
import type { TempStack } from '../lib/temp-stack.ts';
import { fmt } from './stats.ts';

// Push N agents-shaped rows to the mirror (the first push of a mirrored table: every row
// dirty), against COPY ... TO STDOUT piped into COPY ... FROM STDIN between the same two
// databases, in the same run.

export interface SyncBenchResult {
  rows: number;
  pushMs: number;
  copyMs: number;
}

export async function benchSync(stack: TempStack, rows: number): Promise<SyncBenchResult> {
  const primary = postgres(stack.settings.SUPABASE_DB_URL!, { max: 4, onnotice: () => {} });
  const mirror = postgres(stack.settings.COCKROACH_DB_URL!, { max: 4, onnotice: () => {} });
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
    return { rows, pushMs, copyMs };
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
    `| push (outbox, keyset pages of 1,000, guarded upserts) | ${fmt(r.pushMs, 0)} | ${
      perSec(r.pushMs)
    } |`,
    `| COPY TO STDOUT piped into COPY FROM STDIN | ${fmt(r.copyMs, 0)} | ${perSec(r.copyMs)} |`,
    '',
    `push / COPY: ${fmt(r.copyMs / r.pushMs, 2)}x of COPY's rate (target >= 0.5x)`,
  ].join('\n');
}
