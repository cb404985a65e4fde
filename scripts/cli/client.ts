import { readEnvFile } from '../lib/env-file.ts';

// The CLI talks to the Edge Functions over HTTP, as the dashboard does: the local stack's
// (from .env.local, written by `npm start`) or a deployed project's (CESAR_FUNCTIONS_URL and
// CESAR_FUNCTION_SECRET in the environment).

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

export class CliError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

export interface Client {
  call<T>(fn: string, path: string, body?: unknown, method?: string): Promise<T>;
}

/** The settings: the environment first, then the local stack's .env.local. */
export async function settings(env = process.env): Promise<Record<string, string | undefined>> {
  const saved = await readEnvFile(env.CESAR_ENV_FILE ?? '.env.local');
  return {
    ...saved,
    ...Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)),
  };
}

export async function clientFromEnvironment(env = process.env): Promise<Client> {
  const found = await settings(env);
  const base = found.CESAR_FUNCTIONS_URL;
  const secret = found.CESAR_FUNCTION_SECRET;
  if (!base || !secret) {
    throw new CliError(
      'no functions to talk to: run `npm start` (it writes .env.local), or set CESAR_FUNCTIONS_URL and CESAR_FUNCTION_SECRET',
      EXIT.unreachable,
    );
  }
  return {
    async call<T>(
      fn: string,
      path: string,
      body?: unknown,
      method = body === undefined ? 'GET' : 'POST',
    ) {
      const url = `${base.replace(/\/$/, '')}/${fn}${path}`;
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        throw new CliError(`cannot reach ${url}: ${(err as Error).message}`, EXIT.unreachable);
      }
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (!res.ok) {
        const error = (json as {
          error?: { message?: string; issues?: Array<{ path: string; message: string }> };
        })
          ?.error;
        const issues = error?.issues?.map((i) => `${i.path}: ${i.message}`).join('; ');
        const message = `${method} ${fn}${path}: ${res.status} ${
          error?.message ?? text.slice(0, 200)
        }${issues ? ` (${issues})` : ''}`;
        throw new CliError(
          message,
          res.status === 401 || res.status >= 500 ? EXIT.unreachable : EXIT.failed,
        );
      }
      return json as T;
    },
  };
}
