import type { Context } from 'hono';
import type { z } from 'zod';
import { ApiError, zodIssues } from './errors.ts';

export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Reads and validates a JSON body: 413 past 1 MiB, 400 for malformed JSON, 400 naming each
 * field that fails the schema. An empty body reads as `{}`.
 */
export async function readJsonBody<T extends z.ZodType>(
  c: Context,
  schema: T,
): Promise<z.infer<T>> {
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) {
    throw new ApiError(413, `body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.byteLength > MAX_BODY_BYTES) {
    throw new ApiError(413, `body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  const text = new TextDecoder().decode(bytes).trim();
  let value: unknown = {};
  if (text !== '') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ApiError(400, `body is not valid JSON: ${(err as Error).message}`);
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError(400, 'invalid request body', zodIssues(parsed.error));
  return parsed.data;
}
