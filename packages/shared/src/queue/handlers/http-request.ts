import { z } from 'zod';
import type { Sql } from '../../db.ts';
import {
  OutboundRefusedError,
  outboundRequest,
  outboundSecretName,
  refuseForbiddenHeaders,
  refuseSignatureHeaders,
  signatureHeaders,
  SigningSecretError,
  splitSecrets,
} from '../../http/index.ts';
import { parseRetryAfter } from '../backoff.ts';
import { rateGroup } from '../flow-control.ts';
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
  /**
   * Sign the request per Standard Webhooks with the secret(s) in this outbound_* setting
   * (`whsec_<base64>`, several separated by spaces while the receiver rotates): webhook-id
   * `cesar-job-<id>` (the same on every retry), webhook-timestamp of the attempt,
   * webhook-signature over the body as sent.
   */
  sign_with: outboundSecretName.optional(),
  /**
   * The rate limit the job counted against when it was claimed (http.request's rate_key,
   * payload.rate_group): the limit of that key in cesar.job_rate_limits, if it has one.
   */
  rate_group: rateGroup.optional(),
}).superRefine(refuseSignatureHeaders);

// Status codes worth another try: the server may answer differently later.
const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);
const BODY_KEPT = 2_000;

/** A setting's value through cesar.setting(), or null when it is not configured. */
async function readSetting(sql: Sql, name: string): Promise<string | null> {
  const [row] = await sql<Array<{ value: string | null }>>`select cesar.setting(${name}) as value`;
  return row?.value ?? null;
}

/**
 * The signature headers of this attempt: the id is the job's, so a receiver recognises a
 * retry; the timestamp is now, so a retry hours later is not refused as a replay. The
 * secrets' values appear in no error, only the setting's name.
 */
async function signingHeaders(
  sql: Sql,
  setting: string,
  jobId: number | string,
  now: Date,
  body: string,
) {
  const value = await readSetting(sql, setting);
  const secrets = splitSecrets(value ?? '');
  if (secrets.length === 0) {
    throw new PermanentJobError(`sign_with: secret "${setting}" is not configured`);
  }
  try {
    return await signatureHeaders(
      secrets,
      `cesar-job-${jobId}`,
      Math.floor(now.getTime() / 1000),
      body,
    );
  } catch (err) {
    if (err instanceof SigningSecretError) {
      throw new PermanentJobError(`sign_with: secret "${setting}": ${err.message}`);
    }
    throw err;
  }
}

/** The headers to send, and the names of those that carry a secret. */
async function resolveHeaders(sql: Sql, headers: Record<string, z.infer<typeof headerValue>>) {
  const resolved: Record<string, string> = {};
  const sensitive: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') {
      resolved[name] = value;
      continue;
    }
    const secret = await readSetting(sql, value.secret);
    if (secret == null) {
      throw new PermanentJobError(`header ${name}: secret "${value.secret}" is not configured`);
    }
    resolved[name] = (value.prefix ?? '') + secret;
    sensitive.push(name);
  }
  return { headers: resolved, sensitive };
}

/**
 * `http.request`: one outbound call, with an Idempotency-Key that stays the same across
 * retries of the job, signed when `sign_with` names a signing secret. 2xx completes; 408/425/429/5xx and network errors retry, at the time
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
  if (input.sign_with) {
    Object.assign(
      headers,
      await signingHeaders(sql, input.sign_with, job.id, clock.now(), body ?? ''),
    );
    // Not sent on to another origin should the target redirect there.
    sensitive.push('webhook-signature');
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
