import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { isConnectionError } from '../peer-errors.ts';

/** One shape for every error answer: `{ error: { message, issues? } }`. */
export interface ErrorBody {
  error: { message: string; issues?: Array<{ path: string; message: string }> };
}

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
    readonly issues?: ErrorBody['error']['issues'],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  message: string,
  issues?: ErrorBody['error']['issues'],
) {
  const body: ErrorBody = { error: issues ? { message, issues } : { message } };
  return c.json(body, status);
}

export function zodIssues(error: z.ZodError): NonNullable<ErrorBody['error']['issues']> {
  return error.issues.map((issue) => ({
    path: issue.path.join('.') || '(root)',
    message: issue.message,
  }));
}

/**
 * Internals never leak: anything unexpected is logged and answered with a plain 500. A
 * database that is away is not a bug: 503, with the error's code, and the caller may retry.
 */
export const onError: ErrorHandler = (err, c) => {
  if (err instanceof ApiError) return errorResponse(c, err.status, err.message, err.issues);
  if (err instanceof z.ZodError) {
    return errorResponse(c, 400, 'invalid request', zodIssues(err));
  }
  if (err instanceof HTTPException) {
    return errorResponse(c, err.status as ContentfulStatusCode, err.message || 'request failed');
  }
  if (isConnectionError(err)) {
    console.error(`${c.req.method} ${c.req.path}: database unavailable:`, String(err));
    c.header('Retry-After', '1');
    const code = (err as { code?: unknown }).code;
    return errorResponse(c, 503, `database unavailable (${code ?? 'connection lost'}), try again`);
  }
  console.error(`${c.req.method} ${c.req.path} failed:`, err);
  return errorResponse(c, 500, 'internal error');
};

export const notFound: NotFoundHandler = (c) =>
  errorResponse(c, 404, `no route for ${c.req.method} ${c.req.path}`);

/** Validates a query string against a zod schema; a failure is a 400 naming the field. */
export function parseQuery<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) {
    throw new ApiError(400, 'invalid query parameters', zodIssues(parsed.error));
  }
  return parsed.data;
}
