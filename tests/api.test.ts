import { describe, expect, it } from 'vitest';
import { createApiApp } from '../packages/shared/src/api/app.ts';
import { cachedHealth, type Health } from '../packages/shared/src/api/health.ts';
import { fixedClock } from '../packages/shared/src/clock.ts';
import { createSql, type Sql } from '../packages/shared/src/db.ts';
import { builtInHandlers } from '../packages/shared/src/queue/handlers/index.ts';
import { VERSION } from '../packages/shared/src/version.ts';
import {
  databaseUrl,
  functionSql,
  mirrorUrl,
  poolerUrl,
  testSql,
  withRollback,
} from './helpers/db.ts';

const SECRET = 'test-function-secret-0123456789';
const SERVICE_KEY = 'test-service-role-key-0123456789';
const NOW = new Date('2026-11-20T12:00:00Z');
const sql = testSql();
// The api function's own pool: through the transaction pooler, as CESAR_DB_URL gives it.
const fnSql = functionSql(4, 'api');
const auth = { authorization: `Bearer ${SECRET}` };

function app(
  deps: { sql?: Sql; mirror?: Sql | null; applicationName?: string; pooled?: boolean } = {},
) {
  return createApiApp({
    sql: deps.sql ?? fnSql,
    mirror: deps.mirror === undefined ? null : deps.mirror,
    config: {
      functionSecret: SECRET,
      serviceRoleKey: SERVICE_KEY,
      dbPoolMax: 4,
      databasePooled: deps.pooled ?? deps.sql === undefined,
    },
    clock: fixedClock(NOW),
    applicationName: deps.applicationName ?? 'cesar-edge/api/test',
    jobTypes: Object.keys(builtInHandlers),
  });
}

describe('api authentication', () => {
  it('answers 401 without a bearer token, with a wrong one, or with another scheme', async () => {
    const attempts: Array<Record<string, string>> = [{}, {
      authorization: 'Bearer wrong-secret-000000000000',
    }, { authorization: `Basic ${SECRET}` }];
    for (const headers of attempts) {
      const res = await app().request('/api/health', { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({
        error: { message: expect.stringMatching(/bearer token/) },
      });
    }
  });

  it('accepts the function secret and the service role key', async () => {
    for (const token of [SECRET, SERVICE_KEY]) {
      const res = await app().request('/api/health/business', {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
    }
  });

  it('answers unknown routes with 404 in the error shape', async () => {
    const res = await app().request('/api/nope', { headers: auth });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { message: 'no route for GET /api/nope' } });
  });
});

describe('GET /api/health', () => {
  it('reuses a check for a second, shared by the callers in between; then checks again', async () => {
    let t = 0;
    let checks = 0;
    let finish!: () => void;
    const check = () =>
      new Promise<Health>((resolve) => {
        checks++;
        const timestamp = `t${t}`;
        finish = () => resolve({ status: 'healthy', timestamp } as Health);
      });
    const health = cachedHealth(check, 1_000, () => t);
    // A slow check: callers meanwhile wait for it instead of starting their own.
    const waiting = [health(), health()];
    t = 300;
    finish();
    expect((await Promise.all(waiting)).map((r) => [r.health.timestamp, r.ageMs])).toEqual([
      ['t0', 300],
      ['t0', 300],
    ]);
    t = 999;
    expect((await health()).ageMs).toBe(999);
    expect(checks).toBe(1);
    t = 1_000;
    const again = health();
    finish();
    expect((await again).health.timestamp).toBe('t1000');
    expect(checks).toBe(2);
  });

  it('says how old its answer is in the Age header', async () => {
    const api = app();
    const first = await api.request('/api/health', { headers: auth });
    const second = await api.request('/api/health', { headers: auth });
    expect(first.headers.get('age')).toBe('0');
    expect(second.headers.get('age')).toBe('0');
    expect(await second.json()).toEqual(await first.json());
  });

  it('reports the database with ping and pool, and the mirror', async () => {
    const applicationName = `cesar-edge/api/health-${Date.now()}`;
    const db = createSql(databaseUrl(), { applicationName, max: 3 });
    const mirror = createSql(mirrorUrl(), { applicationName: 'mirror-test', max: 1 });
    try {
      const res = await app({ sql: db, mirror, applicationName }).request('/api/health', {
        headers: auth,
      });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toEqual({
        status: 'healthy',
        timestamp: NOW.toISOString(),
        version: VERSION,
        components: {
          database: {
            status: 'up',
            kind: 'postgresql',
            ping_ms: expect.any(Number),
            pool: { size: 1, free: 0, max: 4, via: 'direct' },
          },
          mirror: { status: 'up', kind: 'postgresql', ping_ms: expect.any(Number) },
        },
      });
    } finally {
      await db.end();
      await mirror.end();
    }
  });

  it('counts the server connections at work for this instance behind the pooler', async () => {
    const applicationName = `cesar-edge/api/pooled-${Date.now()}`;
    const db = createSql(poolerUrl(), { applicationName, max: 3, pooled: true });
    try {
      // Three transactions at once leave three server connections carrying this name, idle
      // afterwards: they are the pooler's now, not this instance's, and are not counted.
      let started = 0;
      await Promise.all([1, 2, 3].map(() =>
        db.begin(async (tx) => {
          await tx`select 1`;
          started++;
          while (started < 3) await new Promise((r) => setTimeout(r, 10));
        })
      ));
      const [named] = await sql`select count(*)::int as n from pg_stat_activity
                                where application_name = ${applicationName}`;
      expect(named!.n).toBeGreaterThan(1);
      const res = await app({ sql: db, applicationName, pooled: true }).request('/api/health', {
        headers: auth,
      });
      expect(res.status).toBe(200);
      expect((await res.json()).components.database).toEqual({
        status: 'up',
        kind: 'postgresql',
        ping_ms: expect.any(Number),
        pool: { size: 1, free: null, max: 4, via: 'pooler' },
      });
    } finally {
      await db.end();
    }
  });

  it('is degraded, not down, when the mirror does not answer', async () => {
    const mirror = createSql('postgresql://postgres:postgres@127.0.0.1:9/none', {
      applicationName: 'x',
      max: 1,
    });
    try {
      const res = await app({ mirror }).request('/api/health', { headers: auth });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.status).toBe('degraded');
      expect(body.components.mirror).toEqual({
        status: 'down',
        kind: null,
        ping_ms: null,
        error: expect.stringMatching(/ECONNREFUSED/),
      });
    } finally {
      await mirror.end();
    }
  });

  it('answers 503 naming the database when the database does not answer', async () => {
    const db = createSql('postgresql://postgres:postgres@127.0.0.1:9/none', {
      applicationName: 'x',
      max: 1,
    });
    try {
      const res = await app({ sql: db }).request('/api/health', { headers: auth });
      expect(res.status).toBe(503);
      const body = await res.json();
      expect(body.status).toBe('unhealthy');
      expect(body.components.database).toMatchObject({
        status: 'down',
        error: expect.stringMatching(/ECONNREFUSED/),
      });
      expect(body.components.mirror.status).toBe('not_configured');
    } finally {
      await db.end();
    }
  });
});

// Repeatable-read snapshots keep rows that other test files commit meanwhile out of view.
describe('GET /api/agents and /api/health/business', () => {
  it('counts tasks and the 7-day success rate per agent', async () => {
    await withRollback(sql, async (tx) => {
      const [busy] =
        await tx`insert into agents (name, type, capabilities) values ('api-test busy', 'monitor', '{monitoring}') returning id`;
      const [fresh] =
        await tx`insert into agents (name, type, status) values ('api-test fresh', 'monitor', 'offline') returning id`;
      // Three tasks in the window (two completed), one completed 10 days ago (outside it).
      await tx`
        insert into tasks (agent_id, title, status, created_at, completed_at) values
          (${busy!.id}, 'a', 'completed', ${new Date('2026-11-19T10:00:00Z')}, ${new Date(
        '2026-11-20T09:00:00Z',
      )}),
          (${busy!.id}, 'b', 'completed', ${new Date('2026-11-15T10:00:00Z')}, ${new Date(
        '2026-11-15T11:00:00Z',
      )}),
          (${busy!.id}, 'c', 'failed', ${new Date('2026-11-18T10:00:00Z')}, null),
          (${busy!.id}, 'd', 'completed', ${new Date('2026-11-10T10:00:00Z')}, ${new Date(
        '2026-11-10T11:00:00Z',
      )})`;
      const [{ total }] = await tx`select count(*)::int as total from agents` as unknown as [
        { total: number },
      ];
      const res = await app({ sql: tx }).request('/api/agents', { headers: auth });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.count).toBe(total);
      const byName = Object.fromEntries(body.agents.map((a: { name: string }) => [a.name, a]));
      expect(byName['api-test busy']).toMatchObject({
        id: busy!.id,
        task_count: 4,
        tasks_7d: 3,
        completed_7d: 2,
        success_rate: 0.6667,
        capabilities: ['monitoring'],
      });
      expect(byName['api-test fresh']).toMatchObject({
        id: fresh!.id,
        task_count: 0,
        success_rate: null,
        status: 'offline',
      });
    }, 'isolation level repeatable read');
  });

  it('reports active agents, tasks completed today and the 7-day success rate', async () => {
    await withRollback(sql, async (tx) => {
      // The figures are database-wide: compare before and after adding known rows.
      const business = async () =>
        await (await app({ sql: tx }).request('/api/health/business', { headers: auth })).json();
      const before = await business();
      const [a] =
        await tx`insert into agents (name, type, status) values ('b1', 'monitor', 'active') returning id`;
      await tx`insert into agents (name, type, status) values
                 ('b2', 'monitor', 'offline'), ('b3', 'monitor', 'active'), ('b4', 'monitor', 'idle')`;
      const at = (iso: string) => new Date(iso);
      await tx`
        insert into tasks (agent_id, title, status, created_at, completed_at) values
          (${a!.id}, 'today', 'completed', ${at('2026-11-19T10:00:00Z')}, ${
        at('2026-11-20T01:00:00Z')
      }),
          (${a!.id}, 'yesterday', 'completed', ${at('2026-11-19T10:00:00Z')}, ${
        at('2026-11-19T23:59:00Z')
      }),
          (${a!.id}, 'open', 'pending', ${at('2026-11-20T10:00:00Z')}, null),
          (${a!.id}, 'old', 'completed', ${at('2026-10-01T10:00:00Z')}, ${
        at('2026-10-01T11:00:00Z')
      })`;
      const after = await business();
      const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
      expect(after).toEqual({
        timestamp: NOW.toISOString(),
        active_agents: before.active_agents + 2,
        total_agents: before.total_agents + 4,
        active_ratio: round4((before.active_agents + 2) / (before.total_agents + 4)),
        tasks_completed_today: before.tasks_completed_today + 1,
        tasks_7d: before.tasks_7d + 3,
        completed_7d: before.completed_7d + 2,
        success_rate_7d: round4((before.completed_7d + 2) / (before.tasks_7d + 3)),
      });
    }, 'isolation level repeatable read');
  });

  it('gives null rates when there is nothing to divide', async () => {
    await withRollback(sql, async (tx) => {
      // Row level security shows the authenticated role no rows at all: an empty system.
      await tx`set local role authenticated`;
      const res = await app({ sql: tx }).request('/api/health/business', { headers: auth });
      expect(await res.json()).toMatchObject({
        active_agents: 0,
        total_agents: 0,
        active_ratio: null,
        tasks_7d: 0,
        success_rate_7d: null,
      });
    });
  });
});
