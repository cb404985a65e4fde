import type { Hono } from 'hono';
import { ApiError, readJsonBody } from '../http/index.ts';
import {
  deleteKeyRateLimit,
  jobTypeName,
  jobTypePatch,
  keyRateLimitInput,
  listJobTypePolicies,
  putKeyRateLimit,
  rateKeyValue,
  updateJobTypeFlow,
} from '../queue/index.ts';
import type { ApiDeps } from './app.ts';

// The job types' policies and their flow control: caps, rate limits, per-key caps
// (cesar.job_types) and the rate limits of single keys (cesar.job_rate_limits), as
// `cesar jobs types` and the dashboard's Job types table show them and `cesar jobs types set`
// and `cesar jobs rate-limit` change them.

export type JobTypeRouteDeps = Pick<ApiDeps, 'sql' | 'jobTypes'>;

/** The answer for a type there is none of (its name cut to 80 characters). */
const noJobType = (name: string) => new ApiError(404, `no job type ${name.slice(0, 80)}`);

/** The :name of a route: a job type's name, else 404 (nothing can be stored under it). */
function typeName(raw: string): string {
  if (!jobTypeName.safeParse(raw).success) throw noJobType(raw);
  return raw;
}

/** The :key of a route: a value of the type's rate key, else 400 saying why. */
function keyValue(raw: string): string {
  const parsed = rateKeyValue.safeParse(raw);
  if (!parsed.success) {
    throw new ApiError(400, 'invalid rate key', [{
      path: 'key',
      message: parsed.error.issues[0]!.message,
    }]);
  }
  return raw;
}

export function registerJobTypeRoutes(app: Hono, deps: JobTypeRouteDeps) {
  const { sql } = deps;

  // The types the handlers know, and each type's policy in cesar.job_types (retries, caps,
  // rate limits, per-key caps, per-key rate limits).
  app.get('/job-types', async (c) =>
    c.json({
      job_types: [...deps.jobTypes].sort(),
      policies: await listJobTypePolicies(sql),
    }));

  // A type's caps and rate limit: the fields given (null clears one), the others kept. A type
  // the handlers know but the table does not yet gets its row.
  app.patch('/job-types/:name', async (c) => {
    const name = typeName(c.req.param('name'));
    const patch = await readJsonBody(c, jobTypePatch);
    const result = await updateJobTypeFlow(sql, name, patch, deps.jobTypes.includes(name));
    if (result === 'unknown') throw noJobType(name);
    if ('issues' in result) throw new ApiError(400, 'invalid request body', result.issues);
    return c.json(result.row);
  });

  // One key's own rate limit, in place of the type's (or the only one, when the type has
  // none): `PUT /job-types/http.request/rate-limits/partner-x {"rate_limit":10,
  // "rate_period_seconds":60}` holds the http_request actions of rate_group partner-x.
  app.put('/job-types/:name/rate-limits/:key', async (c) => {
    const name = typeName(c.req.param('name'));
    const key = keyValue(c.req.param('key'));
    const body = await readJsonBody(c, keyRateLimitInput);
    const result = await putKeyRateLimit(sql, name, { key, ...body });
    if (result === 'unknown') throw noJobType(name);
    if (result === 'no rate key') {
      throw new ApiError(
        409,
        `job type ${name} has no rate_key, so its jobs have no key: set one first (PATCH /job-types/${name} {"rate_key": "payload.<field>"})`,
      );
    }
    return c.json({ job_type: name, ...result });
  });

  app.delete('/job-types/:name/rate-limits/:key', async (c) => {
    const name = typeName(c.req.param('name'));
    const key = keyValue(c.req.param('key'));
    if (!(await deleteKeyRateLimit(sql, name, key))) {
      throw new ApiError(404, `job type ${name} has no rate limit for the key ${key}`);
    }
    return c.json({ deleted: true, job_type: name, key });
  });
}
