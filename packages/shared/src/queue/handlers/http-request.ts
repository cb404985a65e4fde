import { z } from 'zod';
import type { Sql } from '../../db.ts';
import {
  OutboundRefusedError,
  outboundRequest,
  outboundSecretName,
  refuseForbiddenHeaders,
} from '../../http/index.ts';
import { parseRetryAfter } from '../backoff.ts';
import type { JobHandler } from '../drain.ts';
import { PermanentJobError, RetryAfterError } from '../errors.ts';
import { parsePayload } from './payload.ts';

/**
 * A header value, or a reference to a secret read through cesar.setting() when the job runs:
 * only settings named outbound_* (see http/outbound.ts).
 */
const headerValue = z.union([
  z.string(),
  z.object({ secret: outboundSecretName, prefix: z.string().optional() }).strict(),
]);

export const httpRequestPayload = z.object({
  url: z.url({ protocol: /^https?$/ }),
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
  headers: z.record(z.string(), headerValue).superRefine(refuseForbiddenHeaders).default({}),
  body: z.unknown().optional(),
  timeout_ms: z.number().int().min(100).max(120_000).default(10_000),
});

// Status codes worth another try: the server may answer differently later.
const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);
const BODY_KEPT = 2_000;

/** The headers to send, and the names of those that carry a secret. */
async function resolveHeaders(sql: Sql, headers: Record<string, z.infer<typeof headerValue>>) {
  const resolved: Record<string, string> = {};
  const sensitive: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') {
      resolved[name] = value;
      continue;
    }
    const [row] = await sql<
      Array<{ value: string | null }>
    >`select cesar.setting(${value.secret}) as value`;
    if (row?.value == null) {
      throw new PermanentJobError(`header ${name}: secret "${value.secret}" is not configured`);
    }
    resolved[name] = (value.prefix ?? '') + row.value;
    sensitive.push(name);
  }
  return { headers: resolved, sensitive };
}

/**
 * `http.request`: one outbound call, with an Idempotency-Key that stays the same across
 * retries of the job. 2xx completes; 408/425/429/5xx and network errors retry, at the time
 * Retry-After names when it is given; any other 4xx fails at once. The target and every
 * redirect hop pass the outbound guard (http/outbound.ts): a refused one fails at once.
 */
export const httpRequest: JobHandler = async ({ job, sql, clock, outbound, signal }) => {
  const input = parsePayload('http.request', httpRequestPayload, job.payload);
  const { headers, sensitive } = await resolveHeaders(sql, input.headers);
  headers['Idempotency-Key'] ??= `cesar-job-${job.id}`;
  let body: string | undefined;
  if (input.body !== undefined && input.method !== 'GET') {
    body = typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
    if (
      typeof input.body !== 'string' &&
      !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')
    ) {
      headers['Content-Type'] = 'application/json';
    }
  }
  const response = await outboundRequest(outbound, input.url, {
    method: input.method,
    headers,
    body,
    sensitiveHeaders: sensitive,
    signal: AbortSignal.any([signal, AbortSignal.timeout(input.timeout_ms)]),
  }).catch((err) => {
    if (err instanceof OutboundRefusedError) {
      throw new PermanentJobError(`http.request: ${err.message}`, { cause: err });
    }
    throw err;
  });
  const { text } = response;
  const summary = `${input.method} ${input.url} answered ${response.status}`;
  if (response.status >= 200 && response.status < 300) {
    return { status: response.status, body: text.slice(0, BODY_KEPT) };
  }
  if (RETRYABLE.has(response.status)) {
    const retryAt = parseRetryAfter(response.headers.get('retry-after'), clock.now());
    if (retryAt) {
      throw new RetryAfterError(`${summary}; retry after ${retryAt.toISOString()}`, retryAt);
    }
    throw new Error(`${summary}: ${text.slice(0, 200)}`);
  }
  throw new PermanentJobError(`${summary}: ${text.slice(0, 200)}`);
};
