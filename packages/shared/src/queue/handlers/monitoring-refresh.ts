import { cancelOnAbort } from '../../db.ts';
import type { JobHandler } from '../drain.ts';

/** `monitoring.refresh`: refreshes every monitoring view (cesar.refresh_monitoring_views lists them). */
export const monitoringRefresh: JobHandler = async ({ sql, signal }) => {
  const [row] = await cancelOnAbort(
    signal,
    sql<Array<{ views: string[] }>>`select cesar.refresh_monitoring_views() as views`,
  );
  return { refreshed: row!.views };
};
