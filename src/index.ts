// pgfollow as a library: `import { follow } from 'pgfollow'`. See docs/library.md.

export { follow, defaultSlot, Follow, type FollowOptions, type FollowInfo, type FollowEvents } from './api.js';
export type { AppliedTransaction, RowChange, SchemaChange, TableCounts } from './sqlite/transactions.js';
export type { FollowState } from './follow/follower.js';
export type { CopyProgress } from './follow/copy.js';
export { PgFollowError, type ErrorCode } from './errors.js';
export type { Logger, Fields } from './log.js';
export type { SqliteValue } from './sqlite/values.js';
export { Replica, type ReplicaOptions, type ReplicaStatus, type ReplicaState } from './fanout/replica.js';
