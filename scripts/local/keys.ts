import { createHash, randomBytes } from 'node:crypto';
import { signJwt, verifyJwt } from './jwt.ts';

// The keys `supabase start` gives a project, made per local stack: a JWT secret, the legacy
// anon and service_role keys as HS256 JWTs signed with it, and one key of each new kind
// (`sb_publishable_...`, `sb_secret_...`) in the JSON objects hosted sets in every function.
// Saved keys are kept while they still fit, so restarting a stack changes nothing; keys that
// do not (the random hex service_role key of stacks from before this module) are remade.

export interface LocalKeys {
  SUPABASE_JWT_SECRET: string;
  SUPABASE_ANON_KEY: string;
  SUPABASE_SERVICE_ROLE_KEY: string;
  /** `{"default":"sb_publishable_..."}` */
  SUPABASE_PUBLISHABLE_KEYS: string;
  /** `{"default":"sb_secret_..."}` */
  SUPABASE_SECRET_KEYS: string;
}

// The legacy keys live for years, like the CLI's (2032) and hosted's (ten years).
const KEY_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;
// Supabase Auth refuses JWT secrets shorter than this.
const MIN_SECRET_LENGTH = 32;

/** `sb_<kind>_` + 22 random base64url characters + `_` + an 8-character checksum. */
export function newApiKey(kind: 'publishable' | 'secret'): string {
  const body = `sb_${kind}_${randomBytes(16).toString('base64url')}`;
  const check = createHash('sha256').update(body).digest('base64url').slice(0, 8);
  return `${body}_${check}`;
}

export function localKeys(saved: Record<string, string | undefined>, now = Date.now()): LocalKeys {
  const secret = saved.SUPABASE_JWT_SECRET && saved.SUPABASE_JWT_SECRET.length >= MIN_SECRET_LENGTH
    ? saved.SUPABASE_JWT_SECRET
    : randomBytes(32).toString('hex');
  const iat = Math.floor(now / 1000);
  const roleKey = (role: 'anon' | 'service_role', current: string | undefined) => {
    const check = current ? verifyJwt(current, secret, iat) : null;
    return check?.ok && check.claims.role === role
      ? current!
      : signJwt({ iss: 'supabase-demo', role, iat, exp: iat + KEY_LIFETIME_SECONDS }, secret);
  };
  return {
    SUPABASE_JWT_SECRET: secret,
    SUPABASE_ANON_KEY: roleKey('anon', saved.SUPABASE_ANON_KEY),
    SUPABASE_SERVICE_ROLE_KEY: roleKey('service_role', saved.SUPABASE_SERVICE_ROLE_KEY),
    SUPABASE_PUBLISHABLE_KEYS: namedKeys('publishable', saved.SUPABASE_PUBLISHABLE_KEYS),
    SUPABASE_SECRET_KEYS: namedKeys('secret', saved.SUPABASE_SECRET_KEYS),
  };
}

/** The values of a saved `{"name":"sb_<kind>_..."}` object; [] when it is not one. */
export function parseNamedKeys(kind: 'publishable' | 'secret', raw: string | undefined): string[] {
  if (!raw) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return [];
    const keys = Object.values(parsed);
    return keys.length > 0 &&
        keys.every((k) => typeof k === 'string' && k.startsWith(`sb_${kind}_`) && k.length >= 24)
      ? keys as string[]
      : [];
  } catch {
    return [];
  }
}

function namedKeys(kind: 'publishable' | 'secret', saved: string | undefined): string {
  return parseNamedKeys(kind, saved).length > 0
    ? saved!
    : JSON.stringify({ default: newApiKey(kind) });
}
