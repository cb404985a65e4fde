import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pgbouncerShow } from '../../scripts/lib/pgbouncer.ts';

/**
 * The function instances connected to a stack's pooler, by the application names their pools
 * carry (instanceApplicationName in packages/shared/src/db.ts): `fn` names one function,
 * absent all of them.
 *
 * Read from PgBouncer's SHOW CLIENTS (its admin console, database `pgbouncer`), not from the
 * primary's pg_stat_activity: in transaction mode a server connection carries the name of the
 * client it serves now, or served last, so the primary cannot tell which instances are there.
 */
export async function functionInstances(poolerUrl: string, fn = '%'): Promise<string[]> {
  const clients = await pgbouncerShow<{ application_name: string }>(poolerUrl, 'CLIENTS');
  const prefix = fn === '%' ? 'cesar-edge/' : `cesar-edge/${fn}/`;
  const names = clients.map((c) => c.application_name)
    .filter((name) => name.startsWith(prefix) && name.split('/').length === 3);
  return [...new Set(names)].sort();
}

/**
 * The runtime log of a temporary stack (scripts/lib/temp-stack.ts), read from a mark on: what
 * a test uses to say that no function process died. Instance names cannot say it under the
 * enforced hosted limits: an isolate past its soft limit retires and a fresh one (a new name)
 * takes its requests, as on a hosted project.
 */
export function runtimeLog(localDir: string) {
  const file = path.join(localDir, 'runtime.log');
  const size = async () => (await stat(file)).size;
  return {
    mark: size,
    /** Lines since `from` saying a function process exited unasked or was stopped (546). */
    async ends(from: number): Promise<string[]> {
      const text = (await readFile(file)).subarray(from).toString('utf8');
      return text.split('\n').filter((line) =>
        /\] (exited \(|retired isolate exited|stopped: |restarting in )/.test(line)
      );
    },
    /** Lines since `from` matching `pattern`: what a function logged, for a failure's message. */
    async lines(from: number, pattern: RegExp): Promise<string[]> {
      const text = (await readFile(file)).subarray(from).toString('utf8');
      return text.split('\n').filter((line) => pattern.test(line));
    },
  };
}
