// mirror: the CockroachDB mirror (push, pull, verify, restore) and the sync function. Every
// statement sent to the mirror is built in dialect.ts. Depends on capture (the push expands
// what waits).
export { createSyncApp } from './app.ts';
export { mirroredTableName, syncRunFields, tableList } from './common.ts';
export {
  dialectFromVersion,
  mirrorDialect,
  mirrorStatements,
  run as runStatement,
} from './dialect.ts';
export { declaredTables, runSync, syncStatus } from './run.ts';
export { describeTable } from './schema.ts';
export { type VerifyResult } from './verify.ts';
