// The types the value codec's parts share (values.ts, nested-values.ts): a value as SQLite stores
// it, its storage class, and the converter one Postgres type gets. Types only: every part of the
// codec imports them from here, none from another part.

export type SqliteValue = null | number | bigint | string | Buffer;

export type Storage = 'INTEGER' | 'REAL' | 'TEXT' | 'BLOB';

/** Reads one Postgres type's text output; one per type, chosen once: no dispatch on the type per value. */
export interface Converter {
  storage: Storage;
  /** text output → SQLite value for a column */
  decode(text: string): SqliteValue;
  /** text output → JSON text, for the value inside an array, composite or range */
  json(text: string): string;
}
