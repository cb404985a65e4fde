import type { JobHandler } from '../drain.ts';
import { PermanentJobError } from '../errors.ts';

/**
 * `sync.table`: hands over to the CockroachDB mirror sync. The sync is not built yet, so the
 * job fails permanently and says so, rather than pretending to have synced anything. Failed
 * jobs can be redriven once it exists.
 */
export const syncTable: JobHandler = () => {
  return Promise.reject(
    new PermanentJobError(
      'sync.table: the CockroachDB mirror sync is not built yet; nothing was synced',
    ),
  );
};
