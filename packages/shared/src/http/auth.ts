import type { MiddlewareHandler } from 'hono';
import { errorResponse } from './errors.ts';

const authenticated = new WeakSet<Request>();

/** Did this request present an accepted token? (Refused ones must cost no database work.) */
export function isAuthenticated(request: Request): boolean {
  return authenticated.has(request);
}

/**
 * Accepts `Authorization: Bearer <token>` when the token equals one of `tokens`.
 * The comparison takes the same time wherever the first difference is.
 */
export function requireBearer(tokens: Array<string | null | undefined>): MiddlewareHandler {
  const accepted = tokens.filter((t): t is string => typeof t === 'string' && t.length > 0);
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      return errorResponse(
        c,
        401,
        'missing bearer token: send Authorization: Bearer <CESAR_FUNCTION_SECRET>',
      );
    }
    const token = match[1]!;
    // Check every accepted token, so timing says nothing about which one nearly matched.
    let ok = false;
    for (const candidate of accepted) ok = constantTimeEqual(token, candidate) || ok;
    if (!ok) return errorResponse(c, 401, 'invalid bearer token');
    authenticated.add(c.req.raw);
    await next();
  };
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
