import type { MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import type { Clock } from '../clock.ts';
import { equalsAny, markAuthenticated } from './auth.ts';
import { readBodyBytes } from './body.ts';
import { errorResponse } from './errors.ts';
import {
  DEFAULT_TOLERANCE_SECONDS,
  SECRET_PREFIX,
  signingSecretProblem,
} from '../signing-secret.ts';

export {
  DEFAULT_TOLERANCE_SECONDS,
  signingSecretProblem,
  splitSecrets,
} from '../signing-secret.ts';

// Signed deliveries, as the Standard Webhooks specification has them (standardwebhooks.com):
//
//   webhook-id: <the message's id, the same on every retry of it>
//   webhook-timestamp: <unix seconds of this attempt>
//   webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"> [v1,<...> ...]
//
// The key is a secret written `whsec_<base64>`: the decoded bytes are the HMAC key. Several
// signatures, separated by spaces, let a sender sign with an old and a new secret while a
// receiver moves from one to the other; a receiver accepts a delivery when any one of them
// matches any one of its secrets. Web Crypto only, so the same code runs under Deno and Node.

export const SIGNATURE_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;

/**
 * A zod check for an outbound request that names a signing secret (`sign_with`): the three
 * signature headers are the signer's to set, so a `headers` entry for one is an issue.
 */
export function refuseSignatureHeaders(
  request: { headers?: Record<string, unknown>; sign_with?: unknown },
  ctx: z.RefinementCtx,
) {
  if (request.sign_with === undefined) return;
  for (const name of Object.keys(request.headers ?? {})) {
    if ((SIGNATURE_HEADERS as readonly string[]).includes(name.trim().toLowerCase())) {
      ctx.addIssue({
        code: 'custom',
        path: ['headers', name],
        message: `header ${name} is set by the signature (sign_with) and may not be given`,
      });
    }
  }
}

/** Longer ids are not ids: an attacker's padding, kept out of the HMAC and the messages. */
const MAX_ID_LENGTH = 256;

const keys = new Map<string, Promise<CryptoKey>>();

/** The HMAC key a secret stands for, imported once per process. Throws on a bad secret. */
function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    const problem = signingSecretProblem(secret);
    if (problem) throw new SigningSecretError(problem);
    const raw = Uint8Array.from(atob(secret.slice(SECRET_PREFIX.length)), (c) => c.charCodeAt(0));
    key = crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
    ]);
    // A handful of secrets per process; bounded anyway, so a stream of bad ones cannot grow it.
    if (keys.size >= 64) keys.clear();
    keys.set(secret, key);
  }
  return key;
}

/** A signing secret that is not `whsec_<base64>` of at least 16 bytes. */
export class SigningSecretError extends Error {
  constructor(reason: string) {
    super(`signing secret: ${reason}`);
    this.name = 'SigningSecretError';
  }
}

function toBase64(bytes: ArrayBuffer): string {
  let binary = '';
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function bodyBytes(body: string | Uint8Array): Uint8Array {
  return typeof body === 'string' ? new TextEncoder().encode(body) : body;
}

/** `v1,<base64>`: one secret's signature of one attempt. */
export async function signature(
  secret: string,
  id: string,
  timestamp: number,
  body: string | Uint8Array,
): Promise<string> {
  const head = new TextEncoder().encode(`${id}.${timestamp}.`);
  const payload = bodyBytes(body);
  const content = new Uint8Array(head.length + payload.length);
  content.set(head);
  content.set(payload, head.length);
  return `v1,${toBase64(await crypto.subtle.sign('HMAC', await hmacKey(secret), content))}`;
}

/**
 * The three headers of one attempt: `timestamp` in unix seconds (now, at each attempt), one
 * signature per secret (a sender rotating its secret signs with both for a while).
 */
export async function signatureHeaders(
  secrets: readonly string[],
  id: string,
  timestamp: number,
  body: string | Uint8Array,
): Promise<Record<(typeof SIGNATURE_HEADERS)[number], string>> {
  const signatures = await Promise.all(secrets.map((s) => signature(s, id, timestamp, body)));
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatures.join(' '),
  };
}

export interface SignedHeaders {
  id: string | null | undefined;
  timestamp: string | null | undefined;
  signature: string | null | undefined;
}

export type Verification = { ok: true; id: string; timestamp: number } | {
  ok: false;
  reason: string;
};

/**
 * Checks a delivery against the receiver's secrets: the three headers present, the timestamp
 * within `toleranceSeconds` of `nowSeconds`, and one of the `v1` signatures equal (in constant
 * time) to one computed with one of the secrets. The timestamp is checked before any HMAC is
 * computed. The reason says what is wrong and never repeats a secret or a computed signature.
 */
export async function verifySignature(
  secrets: readonly string[],
  headers: SignedHeaders,
  body: string | Uint8Array,
  nowSeconds: number,
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
): Promise<Verification> {
  const missing = SIGNATURE_HEADERS.filter((_, i) =>
    !([headers.id, headers.timestamp, headers.signature][i] ?? '').trim()
  );
  if (missing.length > 0) return { ok: false, reason: `missing header ${missing.join(', ')}` };
  const id = headers.id!.trim();
  if (id.length > MAX_ID_LENGTH) {
    return { ok: false, reason: `webhook-id is longer than ${MAX_ID_LENGTH} characters` };
  }
  const stamp = headers.timestamp!.trim();
  if (!/^\d{1,12}$/.test(stamp)) {
    return { ok: false, reason: 'webhook-timestamp must be unix seconds (an integer)' };
  }
  const timestamp = Number(stamp);
  if (timestamp < nowSeconds - toleranceSeconds) {
    return {
      ok: false,
      reason: `webhook-timestamp is more than ${toleranceSeconds} s old (a replay is refused)`,
    };
  }
  if (timestamp > nowSeconds + toleranceSeconds) {
    return {
      ok: false,
      reason: `webhook-timestamp is more than ${toleranceSeconds} s in the future`,
    };
  }
  const given = headers.signature!.trim().split(/\s+/).filter((s) => s.startsWith('v1,'));
  if (given.length === 0) {
    return { ok: false, reason: 'webhook-signature holds no v1,<base64> signature' };
  }
  if (given.length > 16) return { ok: false, reason: 'webhook-signature holds over 16 signatures' };
  const expected = await Promise.all(secrets.map((s) => signature(s, id, timestamp, body)));
  // Every pair is compared, none skipped at a match: timing says nothing about which one matched.
  let found = false;
  for (const candidate of given) found = equalsAny(candidate, expected) || found;
  return found
    ? { ok: true, id, timestamp }
    : { ok: false, reason: 'no signature in webhook-signature matches the body' };
}

// ---------------------------------------------------------------------------------------------
// Receiving

/** A delivery whose signature was verified: its `webhook-id`, and until when it would verify. */
export interface VerifiedDelivery {
  id: string;
  /** webhook-timestamp + the tolerance: until then the same attempt could be posted again. */
  expiresAt: Date;
}

const verified = new WeakMap<Request, VerifiedDelivery>();

/**
 * The verified delivery a request carries, set by acceptSignedDeliveries; undefined for a
 * request authenticated otherwise (its `webhook-*` headers, if any, were not checked).
 */
export function verifiedDelivery(request: Request): VerifiedDelivery | undefined {
  return verified.get(request);
}

/** A route's signed deliveries: the receiver's secrets (none: not enabled) and its window. */
export interface SignedDeliveries {
  secrets: readonly string[];
  toleranceSeconds: number;
}

/**
 * A route that external systems may call with a Standard Webhooks signature instead of the
 * function secret, for a receiver with at least one secret (functionApp registers it only
 * then: without one the bearer rules apply as everywhere). Runs before requireSecret:
 * - a request carrying any of the three headers: verified (body read here, within the 1 MiB
 *   limit, and kept for the route); valid is authenticated and its id given to the route
 *   (verifiedDelivery), anything else a 401 saying why, whatever bearer it also carries;
 * - a request without them and without a token: a 401 that names both ways in;
 * - a request without them with a token: left to requireSecret (native Database Webhooks).
 * Nothing here touches the database, so a refused delivery costs it nothing.
 */
export function acceptSignedDeliveries(
  deliveries: SignedDeliveries,
  clock: Clock,
): MiddlewareHandler {
  return async (c, next) => {
    const headers = {
      id: c.req.header('webhook-id'),
      timestamp: c.req.header('webhook-timestamp'),
      signature: c.req.header('webhook-signature'),
    };
    if (headers.id === undefined && headers.timestamp === undefined && !headers.signature) {
      if (c.req.header('authorization') === undefined && c.req.header('apikey') === undefined) {
        return errorResponse(
          c,
          401,
          'unsigned delivery: sign it (Standard Webhooks: webhook-id, webhook-timestamp, ' +
            'webhook-signature) or send Authorization: Bearer <CESAR_FUNCTION_SECRET>',
        );
      }
      return await next();
    }
    const body = await readBodyBytes(c);
    const verdict = await verifySignature(
      deliveries.secrets,
      headers,
      body,
      Math.floor(clock.now().getTime() / 1000),
      deliveries.toleranceSeconds,
    );
    if (!verdict.ok) return errorResponse(c, 401, `invalid signed delivery: ${verdict.reason}`);
    markAuthenticated(c.req.raw);
    verified.set(c.req.raw, {
      id: verdict.id,
      expiresAt: new Date((verdict.timestamp + deliveries.toleranceSeconds) * 1000),
    });
    await next();
  };
}
