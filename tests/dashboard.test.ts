import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../scripts/lib/paths.ts';
import { startTempStack, type TempStack } from '../scripts/lib/temp-stack.ts';

// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against a
// whole local stack on free ports: it loads, shows the seeded agents and each job type's policy
// (a rate limit and a per-key cap set by hand), creates a workflow that then fires on an
// INSERT, runs a sync that ends completed, shows a running job's progress and cancels it,
// retries a failed job, and says plainly when the key is wrong. It leaves a screenshot in docs/
// for the README.

let stack: TempStack;
let browser: Browser;
let page: Page;
let sql: postgres.Sql;
let base: string;
const tag = `dash${Date.now().toString(36)}`;

async function until<T>(what: string, check: () => Promise<T | undefined | false>, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The dashboard served from another origin too (a static server of its files), which the
// stack allows (CESAR_ALLOWED_ORIGINS), as a dashboard hosted elsewhere calls a project.
let elsewhere: http.Server;
let elsewhereOrigin: string;

beforeAll(async () => {
  const files = path.join(repoRoot, 'dashboard');
  elsewhere = http.createServer((req, res) => {
    const name = (req.url ?? '/').split('?')[0] === '/' ? 'index.html' : (req.url ?? '').slice(1);
    if (!['index.html', 'app.js', 'style.css'].includes(name)) {
      res.writeHead(404).end();
      return;
    }
    const type = name.endsWith('.js')
      ? 'text/javascript'
      : name.endsWith('.css')
      ? 'text/css'
      : 'text/html';
    readFile(path.join(files, name)).then(
      (body) => res.writeHead(200, { 'content-type': type }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', () => r()));
  elsewhereOrigin = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
  stack = await startTempStack({ CESAR_ALLOWED_ORIGINS: elsewhereOrigin });
  base = new URL(stack.settings.CESAR_FUNCTIONS_URL!).origin;
  sql = postgres(stack.settings.SUPABASE_DB_URL!, { max: 2, onnotice: () => {} });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
}, 180_000);

afterAll(async () => {
  elsewhere?.close();
  await browser?.close();
  await sql?.end();
  await stack?.destroy();
}, 60_000);

async function connect(key: string) {
  await page.goto(`${base}/dashboard/`);
  await page.fill('#api-key', key);
  await page.click('#connect button[type=submit]');
}

describe('the dashboard', () => {
  it('says plainly when the key is wrong', async () => {
    await connect('not-the-key-0000000000000000');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).toMatch(/401 invalid bearer token/);
  });

  it('works from another origin the stack allows (CORS), with the API field set', async () => {
    await page.goto(`${elsewhereOrigin}/`);
    await page.fill('#api-base', stack.settings.CESAR_FUNCTIONS_URL!);
    await page.fill('#api-key', stack.settings.CESAR_FUNCTION_SECRET!);
    await page.click('#connect button[type=submit]');
    await page.waitForSelector('main:not([hidden])');
    await page.waitForFunction(() => document.querySelectorAll('#agents tbody tr').length === 48);
    expect(await page.isHidden('#error')).toBe(true);
  });

  it('loads with the key and shows the 48 seeded agents', async () => {
    await connect(stack.settings.CESAR_FUNCTION_SECRET!);
    await page.waitForSelector('main:not([hidden])');
    await page.waitForFunction(() => document.querySelectorAll('#agents tbody tr').length === 48);
    expect(await page.textContent('#agent-count')).toBe('48');
    expect(await page.isHidden('#error')).toBe(true);
  });

  it("shows each job type's policy: attempts, lease, cap, rate limit, per-key cap and the keys' own rate limits", async () => {
    // Set by hand on a type no other test here runs, as an operator would (SQL); restored after.
    await sql`update cesar.job_types
              set rate_limit = 3, rate_period_seconds = 1, rate_key = 'payload.agent_id',
                  concurrency_key = 'payload.tenant_id', key_concurrency = 2
              where job_type = 'agent.task'`;
    // An http_request action's rate group with a limit of its own (cesar jobs rate-limit set).
    await sql`insert into cesar.job_rate_limits (job_type, key_value, rate_limit, rate_period_seconds)
              values ('http.request', 'partner-x', 10, 60)`;
    try {
      const agentTask = '#job-types tbody tr:has(td:text-is("agent.task"))';
      // The next refresh (every 5 s) reads the policies again.
      await page.waitForSelector(`${agentTask}:has(td:text-is("3 / 1 s per payload.agent_id"))`, {
        timeout: 15_000,
      });
      const cells = await page.$$eval(
        `${agentTask} td`,
        (tds) => tds.map((td) => td.textContent),
      );
      expect(cells).toEqual([
        'agent.task',
        '5',
        '30 s',
        '',
        '3 / 1 s per payload.agent_id',
        '2 per payload.tenant_id',
      ]);
      // A type with a concurrency cap and no flow control.
      expect(
        await page.$$eval(
          '#job-types tbody tr:has(td:text-is("memory.consolidate")) td',
          (tds) => tds.map((td) => td.textContent),
        ),
      ).toEqual(['memory.consolidate', '5', '2 min', '1', '', '']);
      expect(
        await page.$$eval(
          '#job-types tbody tr:has(td:text-is("http.request")) td',
          (tds) => tds.map((td) => td.textContent),
        ),
      ).toEqual(['http.request', '5', '60 s', '', 'payload.rate_group = partner-x: 10 / 60 s', '']);
    } finally {
      await sql`delete from cesar.job_rate_limits where job_type = 'http.request'`;
      await sql`update cesar.job_types
                set rate_limit = null, rate_period_seconds = null, rate_key = null,
                    concurrency_key = null, key_concurrency = null
                where job_type = 'agent.task'`;
    }
  });

  it('creates an event-triggered workflow through the form, which then fires on an INSERT', async () => {
    await page.waitForFunction(() =>
      document.querySelectorAll('#new-workflow select[name=job_type] option').length > 0
    );
    await page.fill('#new-workflow input[name=name]', `${tag} new task`);
    await page.selectOption('#new-workflow select[name=table]', 'public.tasks');
    await page.fill('#new-workflow input[name=filter_field]', 'record.title');
    await page.fill('#new-workflow input[name=filter_value]', tag);
    await page.selectOption('#new-workflow select[name=job_type]', 'system.noop');
    await page.click('#new-workflow button[type=submit]');
    await page.waitForFunction(
      (name) =>
        [...document.querySelectorAll('#workflows td')].some((td) => td.textContent === name),
      `${tag} new task`,
    );
    const [template] =
      await sql`select id, trigger from cesar.workflow_templates where name = ${`${tag} new task`}`;
    expect(template!.trigger).toMatchObject({
      table: 'public.tasks',
      events: ['INSERT'],
      filter: { field: 'record.title', op: 'eq', value: tag },
    });

    await sql`insert into public.tasks (title) values (${tag}), (${`${tag} other`})`;
    const jobs = await until('the workflow to run', async () => {
      const rows = await sql`
        select q.status from cesar.workflow_executions x join cesar.job_queue q on q.execution_id = x.id
        where x.template_id = ${template!.id}`;
      return rows.length > 0 && rows.every((r) => r.status === 'completed') && rows;
    });
    expect(jobs).toHaveLength(1); // the filter let one of the two rows through
  });

  it('syncs a table with Sync now until it is completed', async () => {
    const clicked = new Date();
    await page.click(
      '#sync tbody tr:has(td:text-is("public.agents")):has(td:text-is("up")) button',
    );
    await until('the sync to complete', async () => {
      const [state] = await sql`select status, last_sync_at from cesar.sync_state
                                where table_name = 'public.agents' and direction = 'up'`;
      return state?.status === 'completed' && new Date(state.last_sync_at) >= clicked;
    });
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#sync tbody tr')].some((tr) =>
        tr.textContent?.startsWith('public.agentsupcompleted')
      )
    );
  });

  it("shows a running job's progress and marks its cancel", async () => {
    // A job whose (absent) drain reported progress and holds it for 10 minutes.
    const [job] = await sql`
      insert into cesar.job_queue (job_type, status, attempts, locked_by, locked_until,
                                   started_at, progress, progress_message)
      values ('system.noop', 'running', 1, ${`${tag}-drain`}, now() + interval '10 minutes',
              now(), 0.4, 'copied 40,000 rows')
      returning id::text`;
    const jobRow = `#running-jobs tbody tr:has(td:text-is("${job!.id}"))`;
    await page.waitForSelector(`${jobRow}:has(td:text-is("40 % copied 40,000 rows"))`, {
      timeout: 15_000,
    });
    await page.click(`${jobRow} button`);
    await page.waitForSelector(
      `${jobRow}:has(td:text-is("40 % copied 40,000 rows (cancel requested)"))`,
      { timeout: 15_000 },
    );
    const [row] = await sql`select status, cancel_requested_at from cesar.job_queue
                            where id = ${job!.id}`;
    expect(row!.status).toBe('running');
    expect(row!.cancel_requested_at).not.toBeNull();
  });

  it('retries a failed job', async () => {
    const [job] = await sql`
      insert into cesar.job_queue (job_type, status, attempts, last_error, finished_at)
      values ('system.noop', 'failed', 5, ${`${tag} broke`}, now()) returning id::text`;
    await page.waitForSelector(`#failed-jobs tbody tr:has(td:text-is("${job!.id}"))`, {
      timeout: 15_000,
    });
    // The earlier clicks scrolled some panels: the screenshot shows them from the top.
    await page.evaluate(() =>
      document.querySelectorAll('section').forEach((s) => s.scrollTo(0, 0))
    );
    await page.screenshot({ path: await screenshotPath(), fullPage: true });
    await page.click(`#failed-jobs tbody tr:has(td:text-is("${job!.id}")) button`);
    await until('the retried job to complete', async () => {
      const [row] = await sql`select status from cesar.job_queue where id = ${job!.id}`;
      return row?.status === 'completed';
    });
  });
});

async function screenshotPath() {
  const dir = path.join(repoRoot, 'docs');
  await mkdir(dir, { recursive: true });
  return path.join(dir, 'dashboard.png');
}
