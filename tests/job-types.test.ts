import { describe, expect, inject, it } from 'vitest';
import { builtInHandlers } from '../packages/shared/src/queue/handlers/index.ts';
import { actionJobTypes, jobTypeNames, jobTypes } from '../packages/shared/src/queue/job-types.ts';
import { actionSchema } from '../packages/shared/src/workflows/schema.ts';
import { testSql } from './helpers/db.ts';

// queue/job-types.ts is the one list of job types. TypeScript derives from it; the database
// holds copies the migrations wrote, and these tests fail when a type is added, dropped or
// changed on one side only.
const sql = testSql();

describe('the job types (queue/job-types.ts)', () => {
  it('are the rows the migrations seed into cesar.job_types, policy and all', () => {
    // Read by the global setup before any test adds a job type of its own.
    expect(inject('migratedJobTypes')).toEqual(
      [...jobTypeNames].sort().map((name) => ({ job_type: name, ...jobTypes[name].policy })),
    );
  });

  it('name the shorthand actions cesar.action_jobs maps, and the job type each makes', async () => {
    const [fn] = await sql<Array<{ def: string }>>`
      select pg_get_functiondef('cesar.action_jobs(jsonb)'::regprocedure) as def`;
    const mapped = Object.fromEntries(
      [...fn!.def.matchAll(/when '([a-z_]+)' then '([a-z_.]+)'/g)].map((m) => [m[1], m[2]]),
    );
    expect(mapped).toEqual(actionJobTypes);
    const actions = [...Object.keys(actionJobTypes), 'enqueue_job'].map((type) => ({
      type,
      job_type: 'system.noop',
    }));
    const jobs = await sql<Array<{ job_type: string }>>`
      select job_type from cesar.action_jobs(${sql.json(actions)})`;
    expect(jobs.map((j) => j.job_type)).toEqual([...Object.values(actionJobTypes), 'system.noop']);
  });

  it('are the handler map, and the template actions are enqueue_job and the shorthands', () => {
    expect(Object.keys(builtInHandlers).sort()).toEqual([...jobTypeNames].sort());
    expect(actionSchema.options.map((o) => o.shape.type.value).sort()).toEqual(
      ['enqueue_job', ...Object.keys(actionJobTypes)].sort(),
    );
  });
});
