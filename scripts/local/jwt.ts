import { createHmac, timingSafeEqual } from 'node:crypto';

// HS256 JSON Web Tokens, as Supabase signs its legacy keys (anon, service_role) and its user
// sessions with the project's JWT secret. Only what the local stack needs: sign a key, and
// check a token the way the Edge Functions gateway does before a verify_jwt function runs.

export type JwtClaims = Record<string, unknown>;

/** Why a token was refused; the gateway maps each to the sb-error-code hosted sends. */
export type JwtFailure =
  | 'format' // not three base64url parts with JSON objects in the first two
  | 'asymmetric' // ES256 / RS256: signed by Supabase Auth's signing keys, not the secret
  | 'algorithm' // anything else, `none` included
  | 'signature'
  | 'expired'
  | 'not-yet-valid';

export type JwtCheck = { ok: true; claims: JwtClaims } | { ok: false; reason: JwtFailure };

const BASE64URL = /^[A-Za-z0-9_-]+$/;

export function signJwt(claims: JwtClaims, secret: string): string {
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${header}.${payload}.${hmac(`${header}.${payload}`, secret)}`;
}

/** Does this look like a JWT at all (three base64url parts)? Says nothing about validity. */
export function isJwtShaped(token: string): boolean {
  const parts = token.split('.');
  return parts.length === 3 && parts.every((p) => BASE64URL.test(p));
}

/**
 * Checks signature, `exp` and `nbf` (seconds since the epoch, no leeway, as jose checks them
 * for the CLI's local gateway). `secret` null: no HS256 token can be valid (fail closed).
 */
export function verifyJwt(
  token: string,
  secret: string | null,
  nowSeconds = Date.now() / 1000,
): JwtCheck {
  if (!isJwtShaped(token)) return { ok: false, reason: 'format' };
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const head = decodeJson(header);
  const claims = decodeJson(payload);
  if (!head || !claims) return { ok: false, reason: 'format' };
  if (head.alg === 'ES256' || head.alg === 'RS256') return { ok: false, reason: 'asymmetric' };
  if (head.alg !== 'HS256') return { ok: false, reason: 'algorithm' };
  if (secret === null) return { ok: false, reason: 'signature' };
  const expected = Buffer.from(hmac(`${header}.${payload}`, secret), 'base64url');
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'signature' };
  }
  if (claims.exp !== undefined && !(typeof claims.exp === 'number' && nowSeconds < claims.exp)) {
    return { ok: false, reason: 'expired' };
  }
  if (claims.nbf !== undefined && !(typeof claims.nbf === 'number' && nowSeconds >= claims.nbf)) {
    return { ok: false, reason: 'not-yet-valid' };
  }
  return { ok: true, claims };
}

function hmac(input: string, secret: string): string {
  return createHmac('sha256', secret).update(input).digest('base64url');
}

function decodeJson(part: string): JwtClaims | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? value as JwtClaims : null;
  } catch {
    return null;
  }
}
