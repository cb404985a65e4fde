import postgres from 'postgres';
import { readEnvFile } from './lib/env-file.ts';
const env = await readEnvFile('.env.local');
const sql = postgres(env.SUPABASE_DB_URL!, { max: 1 });
const wall = () => performance.timeOrigin + performance.now();
const xs: number[] = [];
for (let i = 0; i < 220; i++) {
  const [row] = await sql`select cesar.enqueue('system.noop') as id`;
  const t0 = wall();
  await new Promise((r) => setTimeout(r, 8));
  let r;
  for (;;) {
    [r] =
      await sql`select (result->>'started_at_ms')::float8 as s from cesar.job_queue where id = ${
        row!.id
      }`;
    if (r!.s) break;
    await new Promise((x) => setTimeout(x, 2));
  }
  if (i >= 20) xs.push(r!.s - t0);
}
xs.sort((a, b) => a - b);
console.log('doorbell p50', xs[100]!.toFixed(3), 'p90', xs[180]!.toFixed(3));
await sql.end();
