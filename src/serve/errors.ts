// serve's two outcomes other than an answer. `Forward`: the upstream must answer this (thrown while
// translating, binding, checking or running a local read, with a short reason: what
// `SHOW pgfollow.last_route` reports). `ServeError`: the error Postgres itself would raise for the
// same input (22P02, 22003, 22012, ...), reported to the client as an ErrorResponse.

/** The upstream answers instead, for this reason. */
export class Forward extends Error {
  constructor(readonly reason: string) { super(reason); }
}

export function forward(reason: string): never {
  throw new Forward(reason);
}

export class ServeError extends Error {
  /** The Postgres SQLSTATE to report. */
  readonly sqlState: string;
  constructor(sqlState: string, message: string) {
    super(message);
    this.name = 'ServeError';
    this.sqlState = sqlState;
  }
}
