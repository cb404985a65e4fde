import { z } from 'zod';
import { type AllowEntry, parseAllowList } from './allow-list.ts';
import { DEFAULT_TOLERANCE_SECONDS, signingSecretProblem, splitSecrets } from './signing-secret.ts';

const postgresUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL');

// Supabase and shells hand unset secrets over as empty strings: treat them as absent.
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

/** A JSON object of named keys (`{"default": "sb_secret_..."}`): its values. */
function namedKeys(raw: string | undefined, ctx: z.RefinementCtx): string[] {
  if (raw === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    const keys = parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? Object.values(parsed)
      : null;
    if (keys && keys.every((k) => typeof k === 'string' && k.length >= 16)) {
      return keys as string[];
    }
  } catch { /* said below */ }
  ctx.addIssue({
    code: 'custom',
    message: 'must be a JSON object of keys, e.g. {"default":"sb_secret_..."}',
  });
  return [];
}

/**
 * Every setting the functions and scripts read, with the names production uses.
 * Parsed once at start-up; nothing in packages/shared reads the environment itself.
 */
export const envSchema = z.object({
  /**
   * The primary through a transaction-mode pooler: Supavisor's port 6543 on hosted (set it with
   * `supabase secrets set`; hosted refuses secret names starting with SUPABASE_), the local
   * PgBouncer locally. The functions' pool uses it when set, without prepared statements.
   */
  CESAR_DB_URL: optional(postgresUrl),
  /**
   * The primary, directly; Supabase sets it in every Edge Function. The functions' pool falls
   * back to it when CESAR_DB_URL is absent.
   */
  SUPABASE_DB_URL: optional(postgresUrl),
  /** The CockroachDB mirror (the local stack's second PostgreSQL); absent: no mirror. */
  COCKROACH_DB_URL: optional(postgresUrl),
  /** Shared secret for machine-to-function calls (pg_cron, pg_net, the CLI, operators). */
  CESAR_FUNCTION_SECRET: z.string().min(16, 'must be at least 16 characters'),
  /** Also accepted as a bearer token, as Supabase operators expect. */
  SUPABASE_SERVICE_ROLE_KEY: optional(z.string().min(16, 'must be at least 16 characters')),
  /**
   * The project's API keys of the new kind, as hosted Supabase sets them in every function: a
   * JSON object of named keys, e.g. `{"default":"sb_secret_..."}`; the singular forms are the
   * self-hosted fallback. Secret keys are accepted like the function secret; publishable keys
   * are refused with a 403.
   */
  SUPABASE_SECRET_KEYS: optional(z.string()).transform((raw, ctx) => namedKeys(raw, ctx)),
  SUPABASE_SECRET_KEY: optional(z.string().min(16, 'must be at least 16 characters')),
  SUPABASE_PUBLISHABLE_KEYS: optional(z.string()).transform((raw, ctx) => namedKeys(raw, ctx)),
  SUPABASE_PUBLISHABLE_KEY: optional(z.string()),
  /** The legacy publishable key (a JWT with role anon): refused with a 403 like the others. */
  SUPABASE_ANON_KEY: optional(z.string()),
  /** The project's URL; functions live under `${SUPABASE_URL}/functions/v1`. */
  SUPABASE_URL: optional(z.url()),
  /**
   * Connections each function instance may hold to the primary (through the pooler). 4: what
   * Supabase advises for serverless clients of its pooler (one to four), and 50 instances at
   * once still fit the 200 pooler clients of the smallest computes (Nano, Micro).
   */
  CESAR_DB_POOL_MAX: optional(z.coerce.number().int().min(1).max(50)).default(4),
  /**
   * Hosts http.request may reach although they are loopback, private or link-local:
   * `host` or `host:port` entries separated by commas, e.g. `hooks.internal,10.0.0.5:8080`
   * (the exact format: parseAllowList in allow-list.ts). Absent: public addresses only.
   */
  /**
   * Origins whose browsers may call the functions (the dashboard served elsewhere), comma
   * separated, e.g. `https://ops.example.com,http://localhost:5173`. Absent: none.
   */
  CESAR_ALLOWED_ORIGINS: optional(z.string()).transform((raw, ctx) => {
    const origins = (raw ?? '').split(',').map((o) => o.trim()).filter((o) => o !== '');
    for (const origin of origins) {
      const parsed = URL.canParse(origin) ? new URL(origin) : null;
      if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) {
        ctx.addIssue({
          code: 'custom',
          message:
            `"${origin}" is not an origin like https://ops.example.com (scheme, host, port; no path)`,
        });
      }
    }
    return origins;
  }),
  CESAR_HTTP_ALLOW: optional(z.string()).transform((raw, ctx) => {
    try {
      return parseAllowList(raw ?? '');
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  }),
  /**
   * Signed deliveries to the webhook function (Standard Webhooks): the secrets external
   * systems sign with, `whsec_<base64>`, several separated by spaces or commas while one is
   * rotated out. Set: `POST /webhook` also takes a delivery signed with one of them, without
   * the function secret, and refuses a signed delivery that does not verify. Absent: only
   * the function secret (or a secret key) gets in, as before.
   */
  CESAR_WEBHOOK_SIGNING_SECRET: optional(z.string()).transform((raw, ctx) => {
    const secrets = splitSecrets(raw ?? '');
    secrets.forEach((secret, i) => {
      const problem = signingSecretProblem(secret);
      if (problem) ctx.addIssue({ code: 'custom', message: `secret ${i + 1}: ${problem}` });
    });
    return secrets;
  }),
  /** How far a signed delivery's webhook-timestamp may be from now, either way (seconds). */
  CESAR_WEBHOOK_SIGNATURE_TOLERANCE_SECONDS: optional(
    z.coerce.number().int().min(1).max(86_400),
  ).default(DEFAULT_TOLERANCE_SECONDS),
});

export interface Config {
  /** CESAR_DB_URL, else SUPABASE_DB_URL: what the functions' pool connects to. */
  databaseUrl: string;
  /** True when databaseUrl came from CESAR_DB_URL: a transaction pooler by contract. */
  databasePooled: boolean;
  /** SUPABASE_DB_URL: for whatever needs a session (none of the functions' work does). */
  directDatabaseUrl: string | null;
  mirrorUrl: string | null;
  functionSecret: string;
  serviceRoleKey: string | null;
  supabaseUrl: string | null;
  dbPoolMax: number;
  httpAllow: AllowEntry[];
  allowedOrigins: string[];
  /** SUPABASE_SECRET_KEYS' keys and SUPABASE_SECRET_KEY. */
  secretKeys: string[];
  /** SUPABASE_PUBLISHABLE_KEYS' keys, SUPABASE_PUBLISHABLE_KEY and SUPABASE_ANON_KEY. */
  publishableKeys: string[];
  /** CESAR_WEBHOOK_SIGNING_SECRET's secrets; empty: the webhook function takes no signed deliveries. */
  webhookSigningSecrets: string[];
  webhookSignatureToleranceSeconds: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment; throws a ConfigError naming every missing or malformed key. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = envSchema.safeParse(env);
  // Either URL will do; neither is one more problem, named with the others.
  const noDatabase = !env.CESAR_DB_URL && !env.SUPABASE_DB_URL
    ? ['SUPABASE_DB_URL: set it (direct) or CESAR_DB_URL (the transaction pooler)']
    : [];
  if (!parsed.success || noDatabase.length > 0) {
    throw new ConfigError([
      ...noDatabase,
      ...(parsed.error?.issues ?? []).map((issue) => `${issue.path.join('.')}: ${issue.message}`),
    ]);
  }
  const e = parsed.data;
  const databaseUrl = (e.CESAR_DB_URL ?? e.SUPABASE_DB_URL)!;
  return {
    databaseUrl,
    databasePooled: e.CESAR_DB_URL !== undefined,
    directDatabaseUrl: e.SUPABASE_DB_URL ?? null,
    mirrorUrl: e.COCKROACH_DB_URL ?? null,
    functionSecret: e.CESAR_FUNCTION_SECRET,
    serviceRoleKey: e.SUPABASE_SERVICE_ROLE_KEY ?? null,
    supabaseUrl: e.SUPABASE_URL ?? null,
    dbPoolMax: e.CESAR_DB_POOL_MAX,
    httpAllow: e.CESAR_HTTP_ALLOW,
    allowedOrigins: e.CESAR_ALLOWED_ORIGINS,
    secretKeys: [
      ...e.SUPABASE_SECRET_KEYS,
      ...(e.SUPABASE_SECRET_KEY ? [e.SUPABASE_SECRET_KEY] : []),
    ],
    publishableKeys: [
      ...e.SUPABASE_PUBLISHABLE_KEYS,
      ...(e.SUPABASE_PUBLISHABLE_KEY ? [e.SUPABASE_PUBLISHABLE_KEY] : []),
      ...(e.SUPABASE_ANON_KEY ? [e.SUPABASE_ANON_KEY] : []),
    ],
    webhookSigningSecrets: e.CESAR_WEBHOOK_SIGNING_SECRET,
    webhookSignatureToleranceSeconds: e.CESAR_WEBHOOK_SIGNATURE_TOLERANCE_SECONDS,
  };
}
