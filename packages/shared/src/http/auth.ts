import type { MiddlewareHandler } from 'hono';
import { errorResponse } from './errors.ts';

const authenticated = new WeakSet<Request>();
// Three base64url parts: how a JWT looks, whether or not it is valid.
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Did this request present an accepted token? (Refused ones must cost no database work.) */
export function isAuthenticated(request: Request): boolean {
  return authenticated.has(request);
}

/**
 * Marks a request as authenticated by other means than a token (a signed delivery, see
 * signing.ts): requireSecret lets it through and the metrics count it as accepted.
 */
export function markAuthenticated(request: Request): void {
  authenticated.add(request);
}

/** Tokens a function accepts, and the publishable keys it names when refusing one. */
export interface AcceptedKeys {
  /** The function secret, the legacy service_role key, the project's secret keys. */
  secrets: Array<string | null | undefined>;
  /** The project's publishable keys: a browser's, never enough to run an operation. */
  publishable?: readonly string[];
}

/**
 * Accepts a request whose token equals one of the secrets: `Authorization: Bearer <token>`, or
 * `apikey: <token>` as Supabase's clients send the new secret keys. A publishable key is a
 * 403 (it is a real key, with too little right); anything else a 401. The comparison takes
 * the same time wherever the first difference is.
 */
export function requireSecret(keys: AcceptedKeys): MiddlewareHandler {
  const accepted = keys.secrets.filter((t): t is string => typeof t === 'string' && t.length > 0);
  const publishable = keys.publishable ?? [];
  return async (c, next) => {
    if (authenticated.has(c.req.raw)) return await next();
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const token = bearer ?? c.req.header('apikey')?.trim();
    if (!token) {
      return errorResponse(
        c,
        401,
        'missing bearer token: send Authorization: Bearer <CESAR_FUNCTION_SECRET> (or apikey: <secret key>)',
      );
    }
    if (!equalsAny(token, accepted)) {
      if (equalsAny(token, publishable)) {
        return errorResponse(
          c,
          403,
          'a publishable key cannot run operations: use the function secret or a secret key',
        );
      }
      // Said without decoding it: whose JWT this is (a user session, most likely, since the
      // gateway's verify_jwt lets those through) is no reason to trust it further.
      return errorResponse(
        c,
        401,
        JWT_SHAPE.test(token)
          ? 'a JWT other than the service_role key (a user session) cannot run operations: ' +
            'use the function secret or a secret key'
          : 'invalid bearer token',
      );
    }
    authenticated.add(c.req.raw);
    await next();
  };
}

/**
 * Compares with every candidate, not stopping at a match, so timing says nothing about which
 * one nearly matched.
 */
export function equalsAny(token: string, candidates: readonly string[]): boolean {
  let found = false;
  for (const candidate of candidates) found = constantTimeEqual(token, candidate) || found;
  return found;
}

export function constantTimeEqual(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  let diff = x.length ^ y.length;
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
