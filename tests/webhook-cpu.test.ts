import { beforeAll, describe, expect, it } from 'vitest';
import type { CpuBudget } from '../packages/shared/src/cpu.ts';
import type { Sql } from '../packages/shared/src/db.ts';
import { processInvocation } from '../packages/shared/src/workflows/process.ts';
import { testSql } from './helpers/db.ts';

// The webhook's event processing under a CPU budget: an invocation whose budget is spent
// records the batch in hand, stops (`cpu`) and rings its continuation; the invocations that
// follow process the rest, each event once. On a watched table of its own (schema cpuevents).

const sql = testSql(undefined, 4);

/** A CPU budget that is already spent. */
const spentCpu: CpuBudget = { limitMs: 0, spentMs: () => 1, exhausted: () => true };

beforeAll(async () => {
  await sql.unsafe(`
    create schema if not exists cpuevents;
    create table if not exists cpuevents.notes (
      id bigint generated always as identity primary key,
      body text not null
    );
    select cesar.watch('cpuevents.notes');
  `);
});

/** One invocation; another file's drain may hold the processor lease: then it asks again. */
async function invoke(ring: (sql: Sql) => Promise<boolean>) {
  for (let i = 0;; i++) {
    const result = await processInvocation(
      { sql, clock: { now: () => new Date() }, ring },
      { budgetMs: 20_000, batchSize: 1, cpu: spentCpu },
    );
    if (result.stopped !== 'busy' || i >= 400) return result;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('event processing under a CPU budget', () => {
  it('stops after a batch once the CPU budget is spent, rings its continuation, loses nothing', async () => {
    // Three statements: three captured statements, three events.
    const ids: string[] = [];
    for (const body of ['one', 'two', 'three']) {
      const [row] = await sql`insert into cpuevents.notes (body) values (${body}) returning id`;
      ids.push(String(row!.id));
    }
    let rings = 0;
    const ring = () => {
      rings++;
      return Promise.resolve(true);
    };
    const answers = [];
    for (let call = 0; call < 200; call++) {
      const answer = await invoke(ring);
      answers.push(answer);
      const [left] = await sql<Array<{ n: number }>>`
        select count(*)::int as n from cesar.event_log
        where schema_name = 'cpuevents' and row_key = any(${ids}) and status <> 'ignored'`;
      if (!answer.continued && left!.n === 0) break;
    }
    expect(answers[0]).toMatchObject({ stopped: 'cpu', continued: true });
    expect(answers.filter((a) => a.stopped === 'cpu').every((a) => a.continued)).toBe(true);
    expect(rings).toBe(answers.filter((a) => a.continued).length);
    // A batch of one per invocation: it took several.
    expect(answers.length).toBeGreaterThanOrEqual(3);
    const events = await sql<Array<{ row_key: string; status: string }>>`
      select row_key, status from cesar.event_log
      where schema_name = 'cpuevents' and row_key = any(${ids}) order by id`;
    expect(events).toEqual(ids.map((id) => ({ row_key: id, status: 'ignored' })));
  });
});
