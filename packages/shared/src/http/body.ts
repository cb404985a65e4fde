import type { Context } from 'hono';
import type { z } from 'zod';
import { ApiError, zodIssues } from './errors.ts';

// The limits every request body meets before anything reads it further (README, "Bad input").

/** Bytes of a body, counted while it streams in: a larger one is refused before it is all read. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Nesting of arrays and objects in a body: deeper ones would overflow recursive code. */
export const MAX_JSON_DEPTH = 32;

/**
 * Reads and validates a JSON body: 413 past 1 MiB (declared or streamed), 400 for malformed
 * JSON, nesting deeper than MAX_JSON_DEPTH or a NUL character in a string (PostgreSQL text
 * cannot hold one), 400 naming each field that fails the schema. An empty body reads as `{}`.
 */
export async function readJsonBody<T extends z.ZodType>(
  c: Context,
  schema: T,
): Promise<z.infer<T>> {
  const text = new TextDecoder().decode(await readBodyBytes(c)).trim();
  let value: unknown = {};
  if (text !== '') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ApiError(400, `body is not valid JSON: ${(err as Error).message}`);
    }
  }
  checkJsonValue(value);
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError(400, 'invalid request body', zodIssues(parsed.error));
  return parsed.data;
}

const bodies = new WeakMap<Request, Promise<Uint8Array>>();

/**
 * A request's body as bytes, with the 1 MiB limit (413, declared or streamed). Read once per
 * request: a later call gets the same bytes (a signature check reads the body before the
 * route parses it).
 */
export function readBodyBytes(c: Context): Promise<Uint8Array> {
  let bytes = bodies.get(c.req.raw);
  if (!bytes) {
    const declared = Number(c.req.header('content-length') ?? '0');
    bytes = declared > MAX_BODY_BYTES
      ? Promise.reject(new ApiError(413, `body is larger than ${MAX_BODY_BYTES} bytes`))
      : readCapped(c.req.raw.body);
    bodies.set(c.req.raw, bytes);
  }
  return bytes;
}

/** The stream's bytes, or a 413 as soon as they pass MAX_BODY_BYTES (the rest is not read). */
async function readCapped(body: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  if (!body) return new Uint8Array();
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw new ApiError(413, `body is larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/** Half of a UTF-16 pair without the other: not text, and PostgreSQL's jsonb refuses it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_MESSAGE = 'a lone UTF-16 surrogate (\\ud800 to \\udfff) is not text';

/**
 * Refuses, with a 400 naming the place, a value nested deeper than MAX_JSON_DEPTH or holding a
 * NUL character or a lone surrogate in a string or key. Walks without recursion, so no input can overflow it.
 */
export function checkJsonValue(value: unknown, where = 'body'): void {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [
    { value, path: '', depth: 0 },
  ];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      const problem = value.includes('\0')
        ? 'NUL characters are not allowed'
        : LONE_SURROGATE.test(value)
        ? LONE_SURROGATE_MESSAGE
        : null;
      if (problem) throw new ApiError(400, `${where}${path ? ` at ${path}` : ''}: ${problem}`);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) {
      throw new ApiError(400, `${where} is nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    for (const [key, child] of Object.entries(value)) {
      if (key.includes('\0')) {
        throw new ApiError(400, `${where}: NUL characters are not allowed in keys`);
      }
      if (LONE_SURROGATE.test(key)) throw new ApiError(400, `${where}: ${LONE_SURROGATE_MESSAGE}`);
      stack.push({ value: child, path: path ? `${path}.${key}` : key, depth: depth + 1 });
    }
  }
}
