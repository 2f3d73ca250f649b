// Errors users can look up: every code is explained in docs/errors.md.

export type ErrorCode =
  | 'BAD_CONNINFO'
  | 'UPSTREAM_UNREACHABLE'
  | 'NOT_INSTALLED'
  | 'WAL_LEVEL'
  | 'PRIVILEGE'
  | 'SLOT_LOST'
  | 'CANNOT_MIRROR'
  | 'SQLITE_UNWRITABLE'
  | 'SQLITE_LOCKED'
  | 'SQLITE_MISMATCH'
  | 'BAD_PATH'
  | 'BAD_OPTIONS'
  | 'PROTOCOL'
  | 'FEED_UNREACHABLE'
  | 'FEED_NOT_FOUND'
  | 'FEED_MISMATCH';

export class PgFollowError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  /** The mirrored table (its OID; a partition's root) the error is about, when it is about one. */
  readonly table?: number;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown; table?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PgFollowError';
    this.code = code;
    this.hint = opts.hint;
    this.table = opts.table;
  }

  /** One line for status tables and logs: code, message, hint. */
  get summary(): string {
    return `${this.code}: ${this.message}${this.hint ? ` (hint: ${this.hint})` : ''}`;
  }
}

/** A one-line description of any thrown value, PgFollowError or not. */
export function describeError(e: unknown): string {
  if (e instanceof PgFollowError) return e.summary;
  if (e instanceof Error) return e.message || String(e);
  return String(e);
}
