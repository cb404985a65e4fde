import { z } from 'zod';

// Values a request may carry, checked before any statement sees them (README, "Bad input").

const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(3000, 0, 1);

/**
 * An ISO 8601 timestamp with its offset, from 1970 to 2999 (UTC). PostgreSQL refuses year
 * 0000 and years past 294276, and an offset can carry 9999-12-31 into year 10000: such a value
 * is a 400 here, not an error from the database.
 */
export const timestamp = z.iso.datetime({ offset: true }).refine((value) => {
  const ms = Date.parse(value);
  return ms >= EARLIEST && ms < LATEST;
}, 'must be between 1970 and 2999');
