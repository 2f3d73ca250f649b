// Table descriptions shaped like pgfollow.describe_table() output (sql/capture.sql), built by hand:
// what the capture sends for a table, without a Postgres to describe it.

import type { ColumnDesc, IndexDesc, TableDesc, TypeDesc } from '../../src/capture/desc.js';

/** Built-in types as describe_type() prints them: [oid, typcategory, format_type() without typmod]. */
const BUILTIN: Record<string, [number, string, string]> = {
  bool: [16, 'B', 'boolean'], bytea: [17, 'U', 'bytea'], int8: [20, 'N', 'bigint'], int2: [21, 'N', 'smallint'],
  int4: [23, 'N', 'integer'], text: [25, 'S', 'text'], float4: [700, 'N', 'real'], float8: [701, 'N', 'double precision'],
  varchar: [1043, 'S', 'character varying'], date: [1082, 'D', 'date'], timestamp: [1114, 'D', 'timestamp without time zone'],
  timestamptz: [1184, 'D', 'timestamp with time zone'], numeric: [1700, 'N', 'numeric'], uuid: [2950, 'U', 'uuid'],
  jsonb: [3802, 'U', 'jsonb'],
};
const ARRAY_OID: Record<string, number> = { int4: 1007, text: 1009, bool: 1000, int8: 1016 };

export function pgType(name: string): TypeDesc {
  const b = BUILTIN[name];
  if (!b) throw new Error(`no such built-in type in this fixture: ${name}`);
  return { oid: b[0], name, schema: 'pg_catalog', category: b[1], kind: 'b' };
}

export function arrayType(element: string): TypeDesc {
  const e = pgType(element);
  return { oid: ARRAY_OID[element] ?? 0, name: '_' + element, schema: 'pg_catalog', category: 'A', kind: 'b', element: e, delimiter: ',' };
}

export function enumType(name: string, oid = 90_100): TypeDesc {
  return { oid, name, schema: 'public', category: 'E', kind: 'e' };
}

export interface ColOpts {
  notnull?: boolean;
  default?: string | null;
  missing?: string | null;
  identity?: string | null;
  generated?: string | null;
  /** format_type() text, when the typmod shows in it: 'numeric(12,2)' */
  type?: string;
  typmod?: number;
}

/** One column; `t` a built-in type name, 'int4[]' for an array, or a TypeDesc. */
export function col(attnum: number, name: string, t: string | TypeDesc, o: ColOpts = {}): ColumnDesc {
  const typeinfo = typeof t !== 'string' ? t : t.endsWith('[]') ? arrayType(t.slice(0, -2)) : pgType(t);
  const formatted = typeof t !== 'string' ? t.name : t.endsWith('[]') ? `${BUILTIN[t.slice(0, -2)][2]}[]` : BUILTIN[t][2];
  return {
    attnum, name, type: o.type ?? formatted, typoid: typeinfo.oid, typmod: o.typmod ?? -1,
    notnull: o.notnull ?? false, default: o.default ?? null, identity: o.identity ?? null, generated: o.generated ?? null,
    typeinfo, missing: o.missing ?? null,
  };
}

/** numeric(p,s) as the catalog holds it: typmod ((p << 16) | s) + 4. */
export const numericCol = (attnum: number, name: string, p: number, s: number, o: ColOpts = {}): ColumnDesc =>
  col(attnum, name, 'numeric', { ...o, type: `numeric(${p},${s})`, typmod: ((p << 16) | s) + 4 });

export function table(oid: number, name: string, columns: ColumnDesc[], o: Partial<TableDesc> = {}): TableDesc {
  return {
    oid, schema: o.schema ?? 'public', name, kind: o.kind ?? 'r', replident: o.replident ?? 'd', columns,
    primary_key: o.primary_key === undefined ? null : o.primary_key, unique: o.unique ?? [], indexes: o.indexes ?? [],
    ...(o.partitions !== undefined ? { partitions: o.partitions } : {}),
  };
}

export function index(oid: number, name: string, columns: number[], o: Partial<IndexDesc> = {}): IndexDesc {
  return { oid, name, unique: o.unique ?? false, columns, partial: o.partial ?? false, definition: o.definition ?? `CREATE INDEX ${name} ON ...` };
}
