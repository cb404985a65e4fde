import postgres from 'postgres';
import { startTempStack } from '../lib/temp-stack.ts';
import { paced, percentile, wallMs } from './stats.ts';
const stack = await startTempStack();
try {
  const sql = postgres(stack.settings.SUPABASE_DB_URL!, { max: 2, onnotice: () => {} });
  await sql`alter system set track_functions = 'all'`; await sql`select pg_reload_conf()`;
  for (const round of [0, 1]) {
    const at = new Map<string, number>();
    await paced(300, 100, async (i) => {
      const [row] = await sql`select cesar.enqueue('system.noop', ${sql.json({ trickle: i })}) as id`;
      at.set(row!.id, wallMs());
    });
    await new Promise((r) => setTimeout(r, 1000));
    const rows = await sql<Array<{ id: string; claim: number; started: number; created: number }>>`
      select id, extract(epoch from started_at) * 1000 as claim, extract(epoch from created_at) * 1000 as created,
             (result ->> 'started_at_ms')::float8 as started
      from cesar.job_queue where id = any(${[...at.keys()]}::bigint[])`;
    const total = rows.map((r) => r.started - at.get(r.id)!);
    const toClaim = rows.map((r) => r.claim - at.get(r.id)!);
    const claimToStart = rows.map((r) => r.started - r.claim);
    const p = (xs: number[]) => `${percentile(xs, 50).toFixed(2)}/${percentile(xs, 90).toFixed(2)}/${percentile(xs, 99).toFixed(2)}`;
    console.log(`round ${round}: total ${p(total)} | enqueue-return -> claim stmt start ${p(toClaim)} | claim start -> handler ${p(claimToStart)}`);
  }
  const f = await sql`select funcname, calls, round(self_time::numeric / greatest(calls,1), 3) as per_call, round(total_time::numeric) as total from pg_stat_user_functions where schemaname = 'cesar' order by total_time desc limit 12`;
  console.table(f);
  await sql.end();
  const { readFile } = await import('node:fs/promises');
  const log = await readFile(stack.env.CESAR_LOCAL_DIR + '/runtime.log', 'utf8');
  const lines = log.split('\n').filter((l) => l.includes('TMPWAKE job-drain') || l.includes('TMPCLAIM'));
  const gaps: number[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    if (lines[i].includes('TMPWAKE') && lines[i + 1].includes('TMPCLAIM')) {
      gaps.push(Number(lines[i + 1].split(' ').at(-1)) - Number(lines[i].split(' ').at(-1)));
    }
  }
  gaps.sort((a, b) => a - b);
  console.log('wake -> claim ms', gaps.length, gaps[Math.floor(gaps.length / 2)], gaps[Math.floor(gaps.length * 0.9)]);
  console.log(lines.slice(-12).join('\n'));
} finally {
  await stack.destroy();
}
