import { describe, expect, it } from 'vitest';
import type { Sql } from '../packages/shared/src/db.ts';
import { strictPolicy } from '../packages/shared/src/http/outbound.ts';
import { builtInHandlers } from '../packages/shared/src/queue/handlers/index.ts';
import { leastLoadedAgent } from '../packages/shared/src/queue/handlers/least-loaded-agent.ts';
import type { JobTypeName } from '../packages/shared/src/queue/job-types.ts';
import { enqueueJob } from '../packages/shared/src/queue/queries.ts';
import { testSql, withRollback } from './helpers/db.ts';

// The one rule for "the least-loaded agent" (cesar.least_loaded_agent): fewest open tasks,
// then the agent whose newest open task is oldest, then name; only active agents with the
// capability; never the excluded one. Every test has a capability of its own, so the shared
// database's other agents are never candidates.
const sql = testSql(undefined, 6);
// Holds the row that racing() makes the jobs wait for; a pool of its own.
const locker = testSql(undefined, 1);
const tag = `ll${Date.now().toString(36)}`;
let n = 0;
const uniqueCapability = () => `cap_${tag}_${++n}`;

/** Agents with the capability; `open` tasks each (pending), the newest `newestAgo` ago. */
async function agent(
  db: Sql,
  name: string,
  capability: string,
  { open = 0, closed = 0, newestAgo = '0 s', status = 'active' } = {},
) {
  const [row] = await db<Array<{ id: string }>>`
    insert into agents (name, type, status, capabilities)
    values (${`${tag} ${name} ${capability}`}, 'analyst', ${status}, ${[capability]})
    returning id`;
  const id = row!.id;
  for (let i = 0; i < open; i++) {
    await db`insert into tasks (agent_id, title, status, created_at)
             values (${id}, 'open', ${i % 2 ? 'in_progress' : 'pending'},
                     now() - ${newestAgo}::interval - make_interval(hours => ${i}))`;
  }
  for (let i = 0; i < closed; i++) {
    await db`insert into tasks (agent_id, title, status)
             values (${id}, 'closed', ${i % 2 ? 'failed' : 'completed'})`;
  }
  return id;
}

describe('cesar.least_loaded_agent', () => {
  it('chooses the active agent with the fewest open tasks; closed tasks are no load', () =>
    withRollback(sql, async (db) => {
      const capability = uniqueCapability();
      await agent(db, 'a two open', capability, { open: 2 });
      const one = await agent(db, 'b one open', capability, { open: 1, closed: 6 });
      await agent(db, 'c three open', capability, { open: 3 });
      expect(await leastLoadedAgent(db, { capability })).toBe(one);
    }));

  it('breaks a tie by the oldest newest open task, then by name', () =>
    withRollback(sql, async (db) => {
      const capability = uniqueCapability();
      // Equal load: the one given work longest ago wins, though its name sorts last.
      await agent(db, 'a busy lately', capability, { open: 1, newestAgo: '1 minute' });
      const waited = await agent(db, 'z waited', capability, { open: 1, newestAgo: '2 hours' });
      expect(await leastLoadedAgent(db, { capability })).toBe(waited);
      // No open tasks at all: by name.
      const other = uniqueCapability();
      await agent(db, 'n idle', other);
      const first = await agent(db, 'm idle', other);
      expect(await leastLoadedAgent(db, { capability: other })).toBe(first);
    }));

  it('never chooses an agent that is not active, lacks the capability, or is excluded', () =>
    withRollback(sql, async (db) => {
      const capability = uniqueCapability();
      for (const status of ['idle', 'busy', 'offline', 'error', 'disabled']) {
        await agent(db, `${status} free`, capability, { status });
      }
      await agent(db, 'other capability', uniqueCapability());
      const loaded = await agent(db, 'active loaded', capability, { open: 3 });
      const sender = await agent(db, 'active free', capability);
      expect(await leastLoadedAgent(db, { capability })).toBe(sender);
      expect(await leastLoadedAgent(db, { capability, exceptAgent: sender })).toBe(loaded);
      const [offline] = await db<Array<{ id: string }>>`
        select id from agents where name = ${`${tag} offline free ${capability}`}`;
      // A named agent: only it, and only while it is active and capable.
      expect(await leastLoadedAgent(db, { capability, onlyAgent: loaded })).toBe(loaded);
      expect(await leastLoadedAgent(db, { capability, onlyAgent: offline!.id })).toBeNull();
      expect(await leastLoadedAgent(db, { capability: `${capability}_x`, onlyAgent: loaded }))
        .toBeNull();
      expect(await leastLoadedAgent(db, { capability: `${capability}_none` })).toBeNull();
    }));
});

/** Runs one handler on a job of its type that no drain will claim (it is due next year). */
async function runHandler(type: JobTypeName, payload: Record<string, unknown>) {
  const id = await enqueueJob(sql, type, payload, {
    runAt: new Date(Date.now() + 365 * 86_400_000),
  });
  const [job] = await sql`select * from cesar.job_queue where id = ${id}`;
  try {
    return await builtInHandlers[type]({
      mirror: null,
      job: job as never,
      sql,
      clock: { now: () => new Date() },
      outbound: strictPolicy,
      signal: new AbortController().signal,
    }) as Record<string, unknown>;
  } finally {
    await sql`select cesar.cancel_jobs(array[${id}]::bigint[])`;
  }
}

/**
 * Runs `fn` (`waiters` concurrent jobs) while a transaction holds the row `lock` locks, and
 * lets go only once all of them wait for it: they all reach the row before any of them has it.
 */
async function racing<T>(
  lock: (tx: Sql) => Promise<unknown>,
  waiters: number,
  fn: () => Promise<T>,
): Promise<T> {
  let result!: Promise<T>;
  await locker.begin(async (tx) => {
    const db = tx as unknown as Sql;
    await lock(db);
    result = fn();
    result.catch(() => {});
    for (let i = 0; i < 500; i++) {
      // pg_stat_activity is read once per transaction unless its snapshot is cleared. Waiters
      // queue behind the first one (its tuple lock), not behind this transaction.
      await db`select pg_stat_clear_snapshot()`;
      const [row] = await db<Array<{ waiting: number }>>`
        with recursive blocked (pid) as (
          select pg_backend_pid()
          union
          select a.pid from pg_stat_activity a, blocked b where b.pid = any (pg_blocking_pids(a.pid))
        )
        select count(*)::int - 1 as waiting from blocked`;
      if (row!.waiting >= waiters) break;
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  return await result;
}

describe('agent.task, task.assign and a2a.route choose by the same rule', () => {
  // Equal load, and the agent that sorts first by name was given work last: the documented
  // tie-break picks "z waited", which name order (task.assign's and a2a.route's old rule) did not.
  async function tie() {
    const capability = uniqueCapability();
    await agent(sql, 'a busy lately', capability, { open: 1, newestAgo: '1 minute' });
    const waited = await agent(sql, 'z waited', capability, { open: 1, newestAgo: '2 hours' });
    return { capability, waited };
  }

  it('agent.task', async () => {
    const { capability, waited } = await tie();
    expect(await runHandler('agent.task', { title: 'tie', capability })).toMatchObject({
      agent_id: waited,
      created: true,
    });
  });

  it('task.assign, once however many jobs assign the task at once', async () => {
    const { capability, waited } = await tie();
    // Written assigned, then unassigned: the seed's "Assign new task" workflow (on INSERT
    // without an agent) must not race this test with a task.assign job of its own.
    const [task] = await sql<Array<{ id: string }>>`
      insert into tasks (agent_id, title, required_capability)
      values (${waited}, 'tie', ${capability}) returning id`;
    await sql`update tasks set agent_id = null where id = ${task!.id}`;
    const results = await racing(
      (db) => db`select from tasks where id = ${task!.id} for update`,
      3,
      () => Promise.all([1, 2, 3].map(() => runHandler('task.assign', { task_id: task!.id }))),
    );
    expect(results.filter((r) => r.assigned)).toEqual([
      { task_id: task!.id, agent_id: waited, assigned: true },
    ]);
    expect(results.map((r) => r.agent_id)).toEqual([waited, waited, waited]);
    const events = await sql`select agent_id from agent_events
                             where event_type = 'task.assigned' and payload ->> 'task_id' = ${
      task!
        .id
    }`;
    expect(events).toEqual([{ agent_id: waited }]);
  });

  it('a2a.route (never to the sender), once however many jobs route the message at once', async () => {
    const { capability, waited } = await tie();
    // The sender has the capability and no load: it would win were it not the sender.
    const sender = await agent(sql, 'sender', capability);
    // Written failed, then pending: the seed's "Route new A2A message" workflow (on INSERT
    // when pending) must not race this test with an a2a.route job of its own.
    const [message] = await sql<Array<{ id: string }>>`
      insert into a2a_messages (sender_id, content, metadata, status)
      values (${sender}, 'tie', ${sql.json({ capability })}, 'failed') returning id`;
    await sql`update a2a_messages set status = 'pending' where id = ${message!.id}`;
    const results = await racing(
      (db) => db`select from a2a_messages where id = ${message!.id} for update`,
      3,
      () => Promise.all([1, 2, 3].map(() => runHandler('a2a.route', { message_id: message!.id }))),
    );
    expect(results.filter((r) => r.routed)).toEqual([
      { message_id: message!.id, receiver_id: waited, routed: true },
    ]);
    const events = await sql`select agent_id from agent_events
                             where event_type = 'message.received' and payload ->> 'message_id' = ${
      message!
        .id
    }`;
    expect(events).toEqual([{ agent_id: waited }]);
  });
});
