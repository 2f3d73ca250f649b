// serve's two outcomes other than an answer. `Forward`: the upstream must answer this (thrown while
// translating, binding, checking or running a local read, with a short reason: what
// `SHOW pgfollow.last_route` reports). `ServeError`: the error Postgres itself would raise for the
// same input (22P02, 22003, 22012, ...), reported to the client as an ErrorResponse. Both are
// defined in src/values/errors.ts, where the types' text inputs raise them too.

export { Forward, forward, ServeError } from '../values/errors.js';
