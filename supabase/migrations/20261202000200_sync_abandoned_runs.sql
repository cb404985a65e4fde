-- Why: a sync run whose process died (a mirror crash mid-push, a killed instance) left its
-- table 'in_progress' with no error until its lease ran out and the next run took over. Runs
-- now renew a short lease while they work (sync/run.ts); a lease that lapsed on a run still
-- marked in progress means that run died, and the live status says so at once. (A run that
-- stopped at its budget is 'in_progress' too, to be continued, but holds no lease.)
create or replace view cesar.sync_lag as
select t.table_name, d.direction,
       case when s.status = 'in_progress' and s.lease_holder is not null and s.lease_until < now() then 'failed'
            else coalesce(s.status, 'pending') end as status,
       s.last_sync_at,
       extract(epoch from now() - s.last_sync_at)::bigint as lag_seconds,
       coalesce(s.records_synced, 0) as records_synced,
       coalesce(s.conflicts, 0) as conflicts,
       case when d.direction = 'up'
            then (select count(*) from cesar.sync_outbox o where o.table_name = t.table_name) end as dirty_rows,
       case when s.status = 'in_progress' and s.lease_holder is not null and s.lease_until < now()
            then 'run ' || s.lease_holder || ' stopped without recording an outcome (lease expired '
                 || s.lease_until || '); the next run takes over'
            else s.error_message end as error_message
from cesar.sync_tables t
cross join (values ('up'), ('down')) as d (direction)
left join cesar.sync_state s on s.table_name = t.table_name and s.direction = d.direction
where t.enabled;
