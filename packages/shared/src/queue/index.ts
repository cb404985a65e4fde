// queue: the job queue (enqueue, leased batch claims, outcomes, backoff), the job types and
// their handlers, and the job-drain function. Depends on mirror (the sync.table handler) and
// http (outbound requests).
export { createJobDrainApp } from './app.ts';
export { classifyFailure } from './errors.ts';
export { builtInHandlers } from './handlers/index.ts';
export { type ActionShorthand, jobTypeNames } from './job-types.ts';
export {
  deleteKeyRateLimit,
  enqueueJob,
  type JobTypeRow,
  type KeyRateLimit,
  listJobTypePolicies,
  putKeyRateLimit,
  updateJobTypeFlow,
} from './queries.ts';
export {
  jobTypeName,
  jobTypePatch,
  keyRateLimitInput,
  rateGroup,
  rateKeyValue,
} from './flow-control.ts';
export { checkKeyFields, keyFields } from './key-modes.ts';
