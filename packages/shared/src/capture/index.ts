// capture: what the database records of a change. Statement triggers keep a statement's rows in
// a capture store; cesar.expand_captures makes them events (watched tables) and outbox marks
// (mirrored tables) in SQL. Native Database Webhook deliveries become events here too. Depends
// on nothing but the database.
export { type ChangeEvent, databaseWebhookPayload, eventOp, identifier } from './events.ts';
export {
  describeEventTable,
  expandCaptures,
  listEvents,
  recordDeliveryId,
  recordWebhookEvent,
  replayEventIds,
  selectEventsForReplay,
} from './queries.ts';
