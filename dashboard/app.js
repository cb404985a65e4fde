// The CESAR Edge dashboard: static files that call the api function with a key the operator
// enters (kept in this tab's sessionStorage only). Served by the local stack at /dashboard;
// deployable anywhere (set the API field to https://<project>.supabase.co/functions/v1).

const REFRESH_MS = 5000;
const $ = (selector) => document.querySelector(selector);
const settings = {
  get base() {
    return sessionStorage.getItem('cesar.api') || `${location.origin}/functions/v1`;
  },
  get key() {
    return sessionStorage.getItem('cesar.key') || '';
  },
};

async function call(path, { method = 'GET', body } = {}) {
  const res = await fetch(`${settings.base.replace(/\/$/, '')}/api${path}`, {
    method,
    headers: { authorization: `Bearer ${settings.key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const issues = json?.error?.issues?.map((i) => `${i.path}: ${i.message}`).join('; ');
    throw new Error(
      `${method} ${path}: ${res.status} ${json?.error?.message ?? text.slice(0, 200)}${
        issues ? ` (${issues})` : ''
      }`,
    );
  }
  return json;
}

function showError(err) {
  const box = $('#error');
  box.textContent = err ? String(err.message ?? err) : '';
  box.hidden = !err;
}

/** A table row from cells: text, or {text, className, button: {label, onClick}}. */
function row(cells) {
  const tr = document.createElement('tr');
  for (const cell of cells) {
    const td = document.createElement('td');
    const spec = typeof cell === 'object' && cell !== null ? cell : { text: cell };
    if (spec.button) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = spec.button.label;
      button.addEventListener('click', () => act(spec.button.onClick));
      td.append(button);
    } else {
      td.textContent = spec.text ?? '';
    }
    if (spec.className) td.className = spec.className;
    if (typeof spec.text === 'number') td.classList.add('num');
    tr.append(td);
  }
  return tr;
}

// Each table names its columns once, in index.html (data-columns, separated by |).
for (const table of document.querySelectorAll('table[data-columns]')) {
  const head = document.createElement('tr');
  for (const name of table.dataset.columns.split('|')) {
    const th = document.createElement('th');
    th.textContent = name;
    head.append(th);
  }
  table.createTHead().append(head);
}

function fill(selector, rows) {
  $(`${selector} tbody`).replaceChildren(...rows.map(row));
}

const status = (s) => ({ text: s, className: `status-${s}` });
const seconds = (s) => (s == null ? '' : s < 120 ? `${s} s` : `${Math.round(s / 60)} min`);
const percent = (x) => (x == null ? '' : `${Math.round(x * 100)} %`);
const money = (x) => (x == null ? '' : Number(x).toFixed(2));

/** An operator's action: run it, show what went wrong, refresh. */
async function act(fn) {
  try {
    await fn();
    showError(null);
  } catch (err) {
    showError(err);
  }
  await refresh();
}

let jobTypesLoaded = false;

async function refresh() {
  if (!settings.key) return;
  try {
    const [overview, agents, workflows, running, failed, events, financial, types] = await Promise
      .all([
        call('/status'),
        call('/agents'),
        call('/workflows'),
        call('/jobs?status=running&limit=20'),
        call('/jobs?status=failed&limit=20'),
        call('/events?limit=15'),
        call('/financial'),
        call('/job-types'),
      ]);
    render(overview, agents, workflows, running, failed, events, financial, types);
    if (!jobTypesLoaded) {
      // Filled once: a refresh would reset the operator's choice.
      $('#new-workflow select[name=job_type]').replaceChildren(
        ...types.job_types.map((t) => new Option(t, t, t === 'system.noop', t === 'system.noop')),
      );
      jobTypesLoaded = true;
    }
    $('main').hidden = false;
    $('#refreshed').textContent = `updated ${new Date().toLocaleTimeString()}`;
    showError(null);
  } catch (err) {
    showError(err);
  }
}

function render(overview, agents, workflows, running, failed, events, financial, types) {
  const b = overview.business;
  $('#business').replaceChildren(
    ...Object.entries(flatten(b)).flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k.replaceAll('_', ' ');
      const dd = document.createElement('dd');
      dd.textContent = typeof v === 'number' && k.includes('rate') ? percent(v) : String(v ?? '');
      return [dt, dd];
    }),
  );

  $('#agent-count').textContent = `${agents.count}`;
  fill(
    '#agents',
    agents.agents.map((
      a,
    ) => [a.name, a.type, status(a.status), a.task_count, percent(a.success_rate)]),
  );

  fill(
    '#workflows',
    workflows.workflows.map((w) => [
      w.name,
      describeTrigger(w.trigger),
      w.enabled ? 'yes' : 'no',
      {
        button: {
          label: w.enabled ? 'Disable' : 'Enable',
          onClick: () =>
            call(`/workflows/${w.id}/${w.enabled ? 'disable' : 'enable'}`, {
              method: 'POST',
              body: {},
            }),
        },
      },
    ]),
  );

  const tables = [...new Set(overview.sync.tables.map((t) => t.table_name))];
  const select = $('#new-workflow select[name=table]');
  if (select.options.length !== tables.length) {
    select.replaceChildren(...tables.map((t) => new Option(t, t)));
  }
  fill(
    '#sync',
    overview.sync.tables.map((t) => [
      t.table_name,
      t.direction,
      status(t.status),
      seconds(t.lag_seconds),
      t.dirty_rows ?? '',
      Number(t.conflicts),
      t.direction === 'up'
        ? {
          button: {
            label: 'Sync now',
            onClick: () =>
              call('/sync', {
                method: 'POST',
                body: { tables: [t.table_name], direction: 'both' },
              }),
          },
        }
        : '',
    ]),
  );

  fill(
    '#queue',
    overview.queue.map((q) => [q.job_type, status(q.status), q.jobs, seconds(q.oldest_seconds)]),
  );
  // Each type's policy as cesar.job_types holds it (PATCH /job-types/:name, `cesar jobs types
  // set`), as `cesar jobs types` shows it; the rate column also lists the keys' own limits
  // (`cesar jobs rate-limit set`: an http_request action's rate_group).
  fill(
    '#job-types',
    types.policies.map((p) => [
      p.job_type,
      p.max_attempts,
      seconds(p.lease_seconds),
      p.concurrency ?? '',
      [
        ...(p.rate_limit == null ? [] : [
          `${p.rate_limit} / ${seconds(p.rate_period_seconds)}${
            p.rate_key ? ` per ${p.rate_key}` : ''
          }`,
        ]),
        ...(p.key_rate_limits ?? []).map((l) =>
          `${p.rate_key} = ${l.key}: ${l.rate_limit} / ${seconds(l.rate_period_seconds)}`
        ),
      ].join('; '),
      p.key_concurrency == null ? '' : `${p.key_concurrency} per ${p.concurrency_key}`,
    ]),
  );
  // Progress as of the drain's last lease renewal (every 2 s while a handler runs); a cancel
  // reaches the handler within about 2 s, until then the job shows "cancel requested".
  fill(
    '#running-jobs',
    running.jobs.map((j) => [
      j.id,
      j.job_type,
      `${j.attempts}/${j.max_attempts}`,
      [
        percent(j.progress),
        j.progress_message ?? '',
        j.cancel_requested_at ? '(cancel requested)' : '',
      ]
        .filter(Boolean).join(' '),
      j.cancel_requested_at ? '' : {
        button: {
          label: 'Cancel',
          onClick: () => call('/jobs/cancel', { method: 'POST', body: { ids: [j.id] } }),
        },
      },
    ]),
  );
  fill(
    '#failed-jobs',
    failed.jobs.map((j) => [
      j.id,
      j.job_type,
      j.key === null ? '' : `${j.key} (${j.key_mode})`,
      `${j.attempts}/${j.max_attempts}`,
      (j.last_error ?? '').slice(0, 120),
      {
        button: {
          label: 'Retry',
          onClick: () => call('/jobs/retry', { method: 'POST', body: { ids: [j.id] } }),
        },
      },
    ]),
  );

  $('#event-backlog').textContent = `${overview.events.pending} pending` +
    (overview.events.oldest_seconds == null
      ? ''
      : `, oldest ${seconds(overview.events.oldest_seconds)}`);
  fill(
    '#events',
    events.events.map((
      e,
    ) => [
      e.id,
      `${e.schema_name}.${e.table_name}`,
      e.op,
      status(e.status),
      new Date(e.occurred_at).toLocaleTimeString(),
    ]),
  );

  fill(
    '#financial',
    financial.symbols.map((s) => [
      s.symbol,
      money(s.last_price),
      s.summary_day ? String(s.summary_day).slice(0, 10) : '',
      money(s.open),
      money(s.close),
      money(s.vwap),
      s.change_pct == null ? '' : Number(s.change_pct).toFixed(2),
    ]),
  );

  fill(
    '#ingestion',
    overview.ingestion_errors.map((
      e,
    ) => [e.source, e.errors_1h, e.errors_1d, (e.last_error ?? '').slice(0, 120)]),
  );
}

function flatten(object, prefix = '') {
  return Object.entries(object ?? {}).reduce((out, [k, v]) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      Object.assign(out, flatten(v, `${prefix}${k} `));
    } else out[`${prefix}${k}`] = v;
    return out;
  }, {});
}

function describeTrigger(t) {
  if (t.type === 'database_event') return `${t.events.join('/')} on ${t.table}`;
  if (t.type === 'schedule') {
    const catchUp = t.catch_up && t.catch_up !== 'none'
      ? `, catch-up ${t.catch_up}${t.catch_up === 'all' ? ` (max ${t.catch_up_max ?? 10})` : ''}`
      : '';
    return `cron ${t.cron} ${t.timezone ?? 'UTC'}${catchUp}`;
  }
  return t.type;
}

$('#connect').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem('cesar.api', $('#api-base').value.trim());
  sessionStorage.setItem('cesar.key', $('#api-key').value.trim());
  $('#api-key').value = '';
  jobTypesLoaded = false;
  refresh();
});

$('#new-workflow').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const trigger = {
    type: 'database_event',
    table: form.get('table'),
    events: form.getAll('events'),
  };
  const field = String(form.get('filter_field') ?? '').trim();
  if (field) trigger.filter = { field, op: 'eq', value: form.get('filter_value') };
  act(async () => {
    await call('/workflows', {
      method: 'POST',
      body: {
        name: form.get('name'),
        trigger,
        actions: [{
          type: 'enqueue_job',
          job_type: form.get('job_type'),
          payload: { row: '{{record.id}}' },
        }],
      },
    });
    event.target.reset();
  });
});

$('#sync-all').addEventListener(
  'click',
  () => act(() => call('/sync', { method: 'POST', body: { direction: 'both' } })),
);
$('#replay-hour').addEventListener(
  'click',
  () =>
    act(() =>
      call('/events/replay', {
        method: 'POST',
        body: { from: new Date(Date.now() - 3_600_000).toISOString() },
      })
    ),
);

$('#api-base').value = settings.base;
refresh();
setInterval(refresh, REFRESH_MS);
