import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

// A local stand-in for the Supabase Management API (https://api.supabase.com/v1), enough for
// the real Supabase CLI to run `link`, `db push`, `secrets set` and `functions deploy
// --use-api` against it without network. The CLI is pointed here with a profile file
// (SUPABASE_PROFILE, see cliProfile): its api_url is this server, its project_host a name
// under .localhost. Every request is recorded, bodies included, so tests can assert exactly
// what the CLI would have sent to a hosted project.
//
// It answers with the shapes of the Management API's OpenAPI schema that the CLI 3.1.0
// validates (V1ProjectWithDatabaseResponse, ApiKeyResponse, SupavisorConfigResponse,
// SecretResponse, FunctionResponse); anything it does not know gets a 404 and is recorded,
// so a new request from a newer CLI shows up in a failing test rather than passing silently.

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One part of a multipart/form-data body. */
export interface FormPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

export interface DeployedFunction {
  slug: string;
  /** The `metadata` part the CLI sent (entrypoint_path, verify_jwt, static_patterns, ...). */
  metadata: Record<string, unknown>;
  /** Uploaded files by the name the CLI gave them (paths relative to the project root). */
  files: Map<string, Buffer>;
}

export interface ManagementApiStandIn {
  url: string;
  ref: string;
  requests: RecordedRequest[];
  secrets: Map<string, string>;
  functions: Map<string, DeployedFunction>;
  /** Answers to give instead, by `METHOD /path`: a step that fails on hosted. */
  failures: Map<string, { status: number; message: string }>;
  close(): Promise<void>;
}

export interface StandInOptions {
  ref: string;
  /** Where the project's database is: the stand-in's pooler config points there. */
  database: { host: string; port: number; user: string; name: string };
}

export function parseMultipart(body: Buffer, contentType: string): FormPart[] {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) throw new Error(`no boundary in ${contentType}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: FormPart[] = [];
  let start = body.indexOf(delimiter);
  while (start !== -1) {
    const afterDelimiter = start + delimiter.length;
    if (body.subarray(afterDelimiter, afterDelimiter + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, afterDelimiter);
    if (next === -1) break;
    // Each part: CRLF, headers, blank line, data, CRLF before the next delimiter.
    const part = body.subarray(afterDelimiter + 2, next - 2);
    const headerEnd = part.indexOf('\r\n\r\n');
    const headers = part.subarray(0, headerEnd).toString('utf8');
    const disposition = /content-disposition:([^\r\n]*)/i.exec(headers)?.[1] ?? '';
    parts.push({
      name: /\bname="([^"]*)"/.exec(disposition)?.[1] ?? '',
      filename: /\bfilename="([^"]*)"/.exec(disposition)?.[1],
      contentType: /content-type:\s*([^\r\n]*)/i.exec(headers)?.[1],
      data: Buffer.from(part.subarray(headerEnd + 4)),
    });
    start = next;
  }
  return parts;
}

/** A profile file that points the Supabase CLI at the stand-in. */
export async function cliProfile(dir: string, apiUrl: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'standin-profile.json');
  await writeFile(
    file,
    JSON.stringify({
      name: 'cesar-standin',
      api_url: apiUrl,
      dashboard_url: `${apiUrl}/dashboard`,
      project_host: 'standin.localhost',
    }),
  );
  return file;
}

export async function startManagementApi(options: StandInOptions): Promise<ManagementApiStandIn> {
  const { ref, database } = options;
  const requests: RecordedRequest[] = [];
  const secrets = new Map<string, string>();
  const functions = new Map<string, DeployedFunction>();
  const failures = new Map<string, { status: number; message: string }>();
  const now = new Date().toISOString();

  const project = {
    id: ref,
    ref,
    organization_id: 'standin-org',
    organization_slug: 'standin-org',
    name: 'cesar-edge-standin',
    region: 'local',
    created_at: now,
    status: 'ACTIVE_HEALTHY',
    database: {
      host: `db.${ref}.standin.localhost`,
      version: '15.8.1.100',
      postgres_engine: '15',
      release_channel: 'ga',
    },
  };
  const apiKeys = [
    { name: 'anon', api_key: 'standin-anon-key', type: 'legacy', id: 'anon' },
    { name: 'service_role', api_key: 'standin-service-role-key', type: 'legacy', id: 'service' },
  ];
  const dbUrl = (port: number) =>
    `postgresql://${database.user}@${database.host}:${port}/${database.name}`;
  const pooler = [{
    identifier: ref,
    database_type: 'PRIMARY',
    is_using_scram_auth: true,
    db_user: database.user,
    db_host: database.host,
    db_port: database.port,
    db_name: database.name,
    connection_string: dbUrl(database.port),
    connectionString: dbUrl(database.port),
    default_pool_size: 15,
    max_client_conn: 200,
    pool_mode: 'transaction',
  }];

  const functionResponse = (f: DeployedFunction, version: number) => ({
    id: randomUUID(),
    slug: f.slug,
    name: f.slug,
    status: 'ACTIVE',
    version,
    created_at: Date.now(),
    updated_at: Date.now(),
    verify_jwt: f.metadata.verify_jwt as boolean | undefined,
    entrypoint_path: f.metadata.entrypoint_path as string | undefined,
    import_map_path: f.metadata.import_map_path as string | undefined,
  });

  const route = (r: RecordedRequest): [number, unknown] => {
    const p = r.path;
    const base = `/v1/projects/${ref}`;
    const key = `${r.method} ${p}`;
    const failure = failures.get(key);
    if (failure) return [failure.status, { message: failure.message }];
    if (!r.headers.authorization?.startsWith('Bearer ')) {
      return [401, { message: 'Unauthorized' }];
    }
    if (p.startsWith('/v1/projects/') && !p.startsWith(base)) {
      return [404, { message: 'Project not found' }];
    }
    if (r.method === 'GET' && p === base) return [200, project];
    if (r.method === 'GET' && p === `${base}/api-keys`) return [200, apiKeys];
    if (r.method === 'GET' && p === `${base}/config/database/pooler`) return [200, pooler];
    if (r.method === 'GET' && p === `${base}/secrets`) {
      return [200, [...secrets].map(([name, value]) => ({ name, value }))];
    }
    if (r.method === 'POST' && p === `${base}/secrets`) {
      const body = JSON.parse(r.body.toString('utf8')) as Array<{ name: string; value: string }>;
      for (const { name, value } of body) {
        if (name.startsWith('SUPABASE_')) {
          return [400, { message: `Invalid secret name: ${name} must not start with SUPABASE_` }];
        }
        secrets.set(name, value);
      }
      return [201, null];
    }
    if (r.method === 'GET' && p === `${base}/functions`) {
      return [200, [...functions.values()].map((f) => functionResponse(f, 1))];
    }
    if (r.method === 'POST' && p === `${base}/functions/deploy`) {
      const slug = r.query.get('slug') ?? '';
      const parts = parseMultipart(r.body, String(r.headers['content-type']));
      const metadata = JSON.parse(
        parts.find((part) => part.name === 'metadata')?.data.toString('utf8') ?? '{}',
      ) as Record<string, unknown>;
      const files = new Map(
        parts.filter((part) => part.name === 'file').map((part) => [part.filename!, part.data]),
      );
      const deployed: DeployedFunction = { slug, metadata, files };
      functions.set(slug, deployed);
      return [201, functionResponse(deployed, 1)];
    }
    if (r.method === 'PUT' && p === `${base}/functions`) {
      // After deploying several functions the CLI sends the whole list back in one bulk
      // update (v1BulkUpdateFunctions) and accepts only a 200.
      const body = JSON.parse(r.body.toString('utf8')) as Array<{ slug: string }>;
      const unknown = body.filter((f) => !functions.has(f.slug)).map((f) => f.slug);
      if (unknown.length > 0) return [404, { message: `no function ${unknown.join(', ')}` }];
      return [200, { functions: body }];
    }
    return [404, { message: `stand-in does not know ${key}` }];
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      requests.push(recorded);
      let status: number;
      let payload: unknown;
      try {
        [status, payload] = route(recorded);
      } catch (err) {
        [status, payload] = [400, { message: (err as Error).message }];
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(payload === null ? '' : JSON.stringify(payload));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    ref,
    requests,
    secrets,
    functions,
    failures,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
