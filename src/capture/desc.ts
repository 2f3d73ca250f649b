// The capture's descriptions of tables and types, as sql/capture.sql (pgfollow.describe_table) and
// sql/types.sql (pgfollow.describe_type) build them: the part of the SQL↔TS contract every DDL
// message, the initial copy and the SQLite catalog (_pgfollow_tables.description) share; and the
// shape each has, checked where capture messages are read (payload.ts).

import { arrayOf, bool, int, later, nullable, object, optional, str, type Shape } from './shape.js';

/** A type as pgfollow.describe_type() (sql/types.sql) describes it. */
export interface TypeDesc {
  oid: number;
  /** pg_type.typname: 'int4', '_int4' for int4[], the user's name for user types */
  name: string;
  schema: string;
  /** pg_type.typcategory */
  category: string;
  /** pg_type.typtype: b base, c composite, d domain, e enum, r range, m multirange, p pseudo */
  kind: string;
  /** domains: the base type (null: describe_type found no such type) */
  base?: TypeDesc | null;
  /** arrays: the element type */
  element?: TypeDesc | null;
  /** arrays: the element type's typdelim; ',' when absent (';' is assumed for box) */
  delimiter?: string;
  /** composites: the columns record_out prints, in order */
  fields?: { name: string; type: TypeDesc }[];
  /** ranges and multiranges: the range's subtype */
  subtype?: TypeDesc | null;
  /** set when describe_type stopped at its depth limit: the children are missing */
  truncated?: boolean;
}

export interface ColumnDesc {
  attnum: number;
  name: string;
  /** format_type() output, e.g. `numeric(12,2)` */
  type: string;
  typoid: number;
  typmod: number;
  notnull: boolean;
  default: string | null;
  identity: string | null;
  generated: string | null;
  typeinfo: TypeDesc;
  /** Text of the value existing rows take for a column added with a default (pg_attribute.attmissingval). */
  missing: string | null;
}

export interface IndexDesc {
  oid: number;
  name: string;
  unique: boolean;
  /** Key columns by attnum; 0 stands for an expression. */
  columns: number[];
  partial: boolean;
  /** pg_get_indexdef(), for messages. */
  definition: string;
}

export interface TableDesc {
  oid: number;
  schema: string;
  name: string;
  kind: string;
  replident: string;
  columns: ColumnDesc[];
  primary_key: number[] | null;
  unique: number[][];
  indexes?: IndexDesc[];
  /** A partitioned table's leaf partitions (OIDs); absent or null for other tables. */
  partitions?: number[] | null;
}

export const TYPE_DESC: Shape<TypeDesc> = object<TypeDesc>({
  oid: int,
  name: str,
  schema: str,
  category: str,
  kind: str,
  base: optional(nullable(later(() => TYPE_DESC))),
  element: optional(nullable(later(() => TYPE_DESC))),
  delimiter: optional(str),
  fields: optional(arrayOf(object<{ name: string; type: TypeDesc }>({ name: str, type: later(() => TYPE_DESC) }))),
  subtype: optional(nullable(later(() => TYPE_DESC))),
  truncated: optional(bool),
});

export const COLUMN_DESC: Shape<ColumnDesc> = object<ColumnDesc>({
  attnum: int,
  name: str,
  type: str,
  typoid: int,
  typmod: int,
  notnull: bool,
  default: nullable(str),
  identity: nullable(str),
  generated: nullable(str),
  typeinfo: TYPE_DESC,
  missing: nullable(str),
});

export const INDEX_DESC: Shape<IndexDesc> = object<IndexDesc>({
  oid: int,
  name: str,
  unique: bool,
  columns: arrayOf(int),
  partial: bool,
  definition: str,
});

export const TABLE_DESC: Shape<TableDesc> = object<TableDesc>({
  oid: int,
  schema: str,
  name: str,
  kind: str,
  replident: str,
  columns: arrayOf(COLUMN_DESC),
  primary_key: nullable(arrayOf(int)),
  unique: arrayOf(arrayOf(int)),
  indexes: optional(arrayOf(INDEX_DESC)),
  partitions: optional(nullable(arrayOf(int))),
});
