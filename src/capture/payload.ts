// The capture's messages as sql/capture.sql writes them: the content layout and its version, the
// payload of each op, and the check that a payload has its op's shape.
//
// Content: `<version> SP <JSON, UTF-8>`, version 2 (message.ts reads the version and the proof).
// The JSON, by op (pgfollow.emit() calls in sql/capture.sql):
//   ddl     tables created or changed, described by pgfollow.describe_table; `reloads`: those whose
//           whole content follows (a reload message, then rows messages)
//   drop    tables dropped (or no longer followed: made UNLOGGED, become a partition) and indexes
//   reload  the content of table `oid` follows; with `partition`, that of one leaf just attached
//   rows    up to 500 rows of table `oid`, text output values in column order; a partitioned
//           table's rows end with one more value, the OID of the leaf partition holding the row
//   error   the capture could not describe a statement: the follow stops there
//
// The check runs once per message, before anything reads the payload (the table-set filter, the
// applier, fan-out): a payload of a known op with a field missing or of the wrong type is a
// PROTOCOL error naming the op and the field, not a TypeError deep in the applier, nor a value
// read as something it is not. Its cost is one typeof per JSON value, less than JSON.parse spent
// on it.

import { PgFollowError } from '../errors.js';
import { TABLE_DESC, type TableDesc } from './desc.js';
import { arrayOf, int, literal, nullable, object, optional, str, type Shape } from './shape.js';

/** The layout version this follower reads. */
export const CAPTURE_VERSION = '2';

export interface DdlCapture {
  op: 'ddl';
  /** The command tag (CREATE TABLE, ALTER TYPE, ...), or RELOAD for pgfollow.reload_table(). */
  tag: string;
  tables: TableDesc[];
  reloads?: number[];
  /** current_query(), cut at 2000 characters: for messages. */
  query?: string | null;
}

export interface DroppedTable {
  oid: number;
  schema: string;
  name: string;
}

export interface DropCapture {
  op: 'drop';
  tag: string;
  tables: DroppedTable[];
  /** Dropped indexes, by OID. */
  indexes?: number[];
  query?: string | null;
}

export interface ReloadCapture {
  op: 'reload';
  oid: number;
  partition?: number;
}

export interface RowsCapture {
  op: 'rows';
  oid: number;
  rows: (string | null)[][];
}

export interface ErrorCapture {
  op: 'error';
  tag: string;
  message: string;
  query?: string | null;
}

/** A capture message, as emitted by sql/capture.sql. */
export type Capture = DdlCapture | DropCapture | ReloadCapture | RowsCapture | ErrorCapture;

export type CaptureOp = Capture['op'];

const QUERY = optional(nullable(str));

/** The shape of each op's payload. */
export const CAPTURE_SHAPES: { [Op in CaptureOp]: Shape<Extract<Capture, { op: Op }>> } = {
  ddl: object<DdlCapture>({ op: literal('ddl'), tag: str, tables: arrayOf(TABLE_DESC), reloads: optional(arrayOf(int)), query: QUERY }),
  drop: object<DropCapture>({
    op: literal('drop'), tag: str, tables: arrayOf(object<DroppedTable>({ oid: int, schema: str, name: str })),
    indexes: optional(arrayOf(int)), query: QUERY,
  }),
  reload: object<ReloadCapture>({ op: literal('reload'), oid: int, partition: optional(int) }),
  rows: object<RowsCapture>({ op: literal('rows'), oid: int, rows: arrayOf(arrayOf(nullable(str))) }),
  error: object<ErrorCapture>({ op: literal('error'), tag: str, message: str, query: QUERY }),
};

/** Whether `op` is one this follower knows (a message of another op is not applied). */
export function isCaptureOp(op: unknown): op is CaptureOp {
  return typeof op === 'string' && Object.hasOwn(CAPTURE_SHAPES, op);
}

/**
 * The payload of a known op, checked: returned as its type, or a PROTOCOL error that names the
 * op, the command tag when there is one, and the first field that is wrong.
 */
export function checkCapture(payload: { op: CaptureOp }): Capture {
  const fault = CAPTURE_SHAPES[payload.op](payload);
  if (!fault) return payload as Capture;
  const tag = (payload as { tag?: unknown }).tag;
  const of = typeof tag === 'string' ? ` (${tag.slice(0, 60)})` : '';
  const where = fault.path === '' ? 'the payload' : `field ${fault.path}`;
  throw new PgFollowError('PROTOCOL', `capture message "${payload.op}"${of}: ${where} ${fault.what}`, {
    hint: 'the upstream\'s capture (sql/capture.sql) and this follower disagree on the message layout: run the same pgfollow version on both ("pgfollow install <conninfo>" installs this one there), then resync the follow',
  });
}
