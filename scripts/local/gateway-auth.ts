import { equalsAny } from '../../packages/shared/src/http/auth.ts';
import type { IncomingHttpHeaders } from 'node:http';
import { readFunctionSettings } from './config-toml.ts';
import { verifyJwt } from './jwt.ts';
import { parseNamedKeys } from './keys.ts';

// The platform check hosted Supabase runs before a function with verify_jwt on (the default):
// - `Authorization: Bearer <token>` decides when present: an HS256 JWT signed with the
//   project's JWT secret and not expired (a user session, the anon or service_role key), or
//   one of the project's API keys, which the check accepts on either header "for migration
//   compatibility" (docs: functions/auth-headers). Asymmetric (ES256/RS256) session tokens are
//   refused: the local stack runs no Supabase Auth to publish their signing keys.
// - without it, an `apikey` header holding a project API key (or the anon / service_role JWT).
// - neither: 401 "Missing authorization header".
// Refusals carry hosted's body, {"code":401,"message":...}, and its sb-error-code header
// (docs: functions/error-codes). OPTIONS passes unchecked: a browser's preflight carries no
// credentials, and the CLI's gateway lets it through to the function's own CORS handling.

export interface GatewayAuth {
  /** config.toml's [functions.<name>] verify_jwt; true when absent. */
  verifyJwt(name: string): boolean;
  /** The project's JWT secret; null: no JWT is valid (the check fails closed). */
  jwtSecret: string | null;
  /** The project's publishable and secret keys (sb_...). */
  apiKeys: readonly string[];
}

export interface Refusal {
  status: 401;
  /** The sb-error-code header. */
  code: string;
  message: 'Invalid JWT' | 'Missing authorization header';
}

/** The check's settings: verify_jwt from config.toml, keys from the stack's environment. */
export function loadGatewayAuth(
  options: { configPath?: string; env?: Record<string, string | undefined> } = {},
): GatewayAuth {
  const env = options.env ?? process.env;
  const settings = readFunctionSettings(options.configPath);
  return {
    verifyJwt: (name) => settings(name).verifyJwt,
    jwtSecret: env.SUPABASE_JWT_SECRET || null,
    apiKeys: [
      ...parseNamedKeys('publishable', env.SUPABASE_PUBLISHABLE_KEYS),
      ...parseNamedKeys('secret', env.SUPABASE_SECRET_KEYS),
    ],
  };
}

/** Null when the request may reach function `name`; otherwise the answer to give. */
export function checkVerifyJwt(
  name: string,
  method: string | undefined,
  headers: IncomingHttpHeaders,
  auth: GatewayAuth,
  nowSeconds = Date.now() / 1000,
): Refusal | null {
  if (method === 'OPTIONS' || !auth.verifyJwt(name)) return null;
  const authorization = headers.authorization;
  if (authorization !== undefined && authorization !== '') {
    const token = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization)?.[1];
    if (!token) return invalid('UNAUTHORIZED_INVALID_JWT_FORMAT');
    if (equalsAny(token, auth.apiKeys)) return null;
    const check = verifyJwt(token, auth.jwtSecret, nowSeconds);
    if (check.ok) return null;
    return invalid(
      check.reason === 'format'
        ? 'UNAUTHORIZED_INVALID_JWT_FORMAT'
        : check.reason === 'asymmetric'
        ? 'UNAUTHORIZED_ASYMMETRIC_JWT'
        : check.reason === 'algorithm'
        ? 'UNAUTHORIZED_UNSUPPORTED_TOKEN_ALGORITHM'
        : 'UNAUTHORIZED_LEGACY_JWT',
    );
  }
  const apikey = headers.apikey;
  if (typeof apikey === 'string' && apikey !== '') {
    if (equalsAny(apikey.trim(), auth.apiKeys)) return null;
    // The legacy keys are JWTs: on `apikey` they count as API keys, not as user sessions.
    const check = verifyJwt(apikey.trim(), auth.jwtSecret, nowSeconds);
    if (check.ok && (check.claims.role === 'anon' || check.claims.role === 'service_role')) {
      return null;
    }
    return invalid('UNAUTHORIZED_INVALID_JWT_FORMAT');
  }
  return {
    status: 401,
    code: 'UNAUTHORIZED_NO_AUTH_HEADER',
    message: 'Missing authorization header',
  };
}

const invalid = (code: string): Refusal => ({ status: 401, code, message: 'Invalid JWT' });
