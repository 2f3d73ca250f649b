// What reading a value's text input can end in besides a value, for serve: `Forward`, the upstream
// must answer (a form pgfollow does not read exactly, with a short reason: what
// `SHOW pgfollow.last_route` reports); `ServeError`, the error Postgres itself would raise for the
// same input (22P02, 22003, 22012, ...). Serve throws them everywhere (src/serve/errors.ts
// re-exports them); they live here so that each type's input in this folder can raise them.

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
