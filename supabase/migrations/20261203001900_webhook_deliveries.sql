-- Why: issue 16, item 7. The webhook function verifies Standard Webhooks signatures
-- (http/signing.ts) and refuses a timestamp outside its tolerance (5 minutes), but did not
-- record `webhook-id`: within that window a captured delivery could be posted again and was
-- told apart only by the payload digest (cesar.event_log.dedup_key). The specification and the
-- senders (Svix, Stripe) expect the receiver to remember the id: a sender that lost the answer
-- retries with the same id (and a new timestamp and signature), and must get a 2xx without the
-- change being taken twice.
--
-- One row per verified delivery, inserted by the statement that records its event (the
-- delivery's row is the gate of the event's insert, capture/queries.ts recordWebhookEvent): a
-- delivery whose ingestion fails leaves no row, so its retry is taken; two deliveries of one
-- id at once meet on the primary key, the second waiting for the first and then doing nothing.
-- Deliveries of watched tables, which record no event, insert their row alone.
--
-- expires_at is the delivery's webhook-timestamp plus the receiver's tolerance: until then the
-- captured attempt would pass verification, so its id must be kept at least that long. The
-- nightly maintenance.prune deletes rows past it (queue/handlers/maintenance-prune.ts); until
-- it does, a repeated id is still answered as a duplicate.
create table cesar.webhook_deliveries (
  id text primary key,
  received_at timestamptz not null default now(),
  expires_at timestamptz not null
);
comment on table cesar.webhook_deliveries is
  'The webhook-id of each signed delivery the webhook function took, kept past its replay window (expires_at).';

-- Only the functions' connection writes it; the API roles never see the cesar schema.
revoke all on cesar.webhook_deliveries from public, anon, authenticated;
