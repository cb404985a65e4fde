-- Why: the pull and the restore both need "the primary's changes to a mirrored table that the
-- mirror has not had yet": rows dirty in the outbox, and changes whose events are not
-- processed yet (captured on the primary, not applied from the mirror). One definition,
-- latest change per row. Plain SQL without a SET clause, so that it is inlined and a caller's
-- condition on row_key reaches the indexes.
create function cesar.unpushed_changes(target text)
returns table (row_key text, op text, occurred_at timestamptz)
language sql
stable
as $$
  select distinct on (c.row_key) c.row_key, c.op, c.occurred_at
  from (
    select o.row_key, o.op, e.occurred_at
    from cesar.sync_outbox o left join cesar.event_log e on e.id = o.event_id
    where o.table_name = target
    union all
    select e.row_key, e.op, e.occurred_at
    from cesar.event_log e
    where e.status in ('pending', 'processing') and e.origin is null
      and e.schema_name || '.' || e.table_name = target
  ) c
  order by c.row_key, c.occurred_at desc nulls last
$$;

revoke execute on function cesar.unpushed_changes(text) from public, anon, authenticated;
