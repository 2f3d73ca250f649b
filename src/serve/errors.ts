// Errors of the SQL half of serve. A ServeError either asks the proxy to forward (NOT_LOCAL) or
// carries the SQLSTATE Postgres would have raised for the same input (22P02, 22003, 22012, ...).

export class ServeError extends Error {
  /** 'NOT_LOCAL': forward the statement; otherwise the Postgres SQLSTATE to report. */
  readonly sqlState: string;
  constructor(sqlState: string, message: string) {
    super(message);
    this.name = 'ServeError';
    this.sqlState = sqlState;
  }
}

export const notLocal = (why: string): ServeError => new ServeError('NOT_LOCAL', why);

/** Thrown while translating: the statement is forwarded with this reason. */
export class Forward extends Error {
  constructor(readonly reason: string) { super(reason); }
}

export function forward(reason: string): never {
  throw new Forward(reason);
}
