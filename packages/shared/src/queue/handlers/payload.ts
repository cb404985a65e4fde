import { z } from 'zod';
import { PermanentJobError } from '../errors.ts';

/** Validates a job's payload; a payload that does not fit is a permanent failure. */
export function parsePayload<T extends z.ZodType>(
  jobType: string,
  schema: T,
  payload: unknown,
): z.infer<T> {
  const parsed = schema.safeParse(payload ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) =>
      `${i.path.join('.') || '(payload)'}: ${i.message}`
    );
    throw new PermanentJobError(`${jobType}: invalid payload: ${problems.join('; ')}`);
  }
  return parsed.data;
}
