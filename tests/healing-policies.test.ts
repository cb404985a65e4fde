import { describe, expect, it } from 'vitest';
import { reconnectDelaySeconds } from '../packages/shared/src/db.ts';
import { isConnectionError, isStrayConnectionError } from '../packages/shared/src/peer-errors.ts';
import { restartPolicy } from '../scripts/local/restart.ts';

// The pure rules behind self-healing: how long a pool waits before reconnecting, how long the
// local runtime waits before restarting a part, and which errors mean "the database is away".

describe('reconnectDelaySeconds', () => {
  it('doubles from 50 ms and never waits more than a second, with jitter', () => {
    const lowest = (n: number) => reconnectDelaySeconds(n, () => 0);
    const highest = (n: number) => reconnectDelaySeconds(n, () => 1);
    expect([0, 1, 2, 3].map(highest)).toEqual([0.05, 0.1, 0.2, 0.4]);
    expect(highest(5)).toBe(1);
    expect(highest(50)).toBe(1);
    expect(lowest(50)).toBe(0.5);
    expect(lowest(0)).toBe(0.025);
  });
});

describe('restartPolicy', () => {
  it('doubles from 0.5 s to 30 s, and starts over after a minute of stable running', () => {
    const policy = restartPolicy();
    let now = 0;
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      policy.started(now);
      now += 100; // dies at once
      delays.push(policy.nextDelayMs(now));
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    policy.started(now);
    expect(policy.nextDelayMs(now + 60_000)).toBe(500);
  });
});

describe('isConnectionError', () => {
  const withCode = (code: string) => Object.assign(new Error(code), { code });

  it('knows a database that is away from a query that failed', () => {
    for (
      const code of [
        'ECONNREFUSED',
        'CONNECTION_CLOSED',
        'CONNECT_TIMEOUT',
        '08006',
        '57P01',
        '53300',
      ]
    ) {
      expect(isConnectionError(withCode(code)), code).toBe(true);
    }
    for (const code of ['23505', '22012', '08P01', '42P01', 'ENOENT', '53200']) {
      expect(isConnectionError(withCode(code)), code).toBe(false);
    }
    expect(isConnectionError(null)).toBe(false);
    expect(isConnectionError('ECONNREFUSED')).toBe(false);
  });

  it("knows a transaction pooler's own 08P01 answers from a protocol violation", () => {
    const pooler = (message: string) => Object.assign(new Error(message), { code: '08P01' });
    for (
      const message of [
        'server login has been failing, try again later (server_login_retry)',
        'query_wait_timeout',
        'pgbouncer cannot connect to server',
        'no more connections allowed (max_client_conn)',
        // Seen by a lingering job-drain when the database restarted under it (it answered
        // 500, an internal error, instead of 503).
        'server conn crashed?',
      ]
    ) {
      expect(isConnectionError(pooler(message)), message).toBe(true);
    }
    expect(isConnectionError(pooler('invalid frontend message type 0'))).toBe(false);
  });

  it('counts a throw as stray only when postgres.js itself threw it', () => {
    const thrown = (stack: string, name = 'TypeError') =>
      Object.assign(new Error('x'), { name, stack: `${name}: x\n${stack}` });
    const inPostgres =
      '    at nextWrite (file:///app/node_modules/postgres/src/connection.js:255:22)';
    const inCache =
      '    at write (file:///var/tmp/cache/npm/registry.npmjs.org/postgres/3.4.9/src/connection.js:1:1)';
    const ours = '    at onNotify (file:///app/packages/shared/src/listen.ts:10:5)';
    expect(isStrayConnectionError(thrown(inPostgres))).toBe(true);
    expect(isStrayConnectionError(thrown(inCache))).toBe(true);
    // Our own callback, called by postgres.js: a bug of ours, not the connection's.
    expect(isStrayConnectionError(thrown(`${ours}\n${inPostgres}`))).toBe(false);
    // A server's answer to a query.
    expect(isStrayConnectionError(thrown(inPostgres, 'PostgresError'))).toBe(false);
  });
});
