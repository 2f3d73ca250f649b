// Postgres types as serve knows them: OIDs, families, and what their SQLite form allows.

export const T = {
  bool: 16, bytea: 17, name: 19, int8: 20, int2: 21, int4: 23, text: 25, oid: 26, json: 114,
  float4: 700, float8: 701, unknown: 705, bpchar: 1042, varchar: 1043, date: 1082, time: 1083,
  timestamp: 1114, timestamptz: 1184, interval: 1186, timetz: 1266, numeric: 1700, uuid: 2950, jsonb: 3802,
  _bool: 1000, _int2: 1005, _int4: 1007, _text: 1009, _varchar: 1015, _int8: 1016,
} as const;

export type Family = 'int' | 'float' | 'numeric' | 'bool' | 'text' | 'datetime' | 'uuid' | 'jsonb' | 'bytea' | 'enum' | 'array' | 'opaque' | 'unknown';

/** A type as the translator tracks it: the OID, and for arrays the element OID. */
export interface PgType { oid: number; category?: string; element?: number }

const ARRAY_OF: Record<number, number> = { [T._bool]: T.bool, [T._int2]: T.int2, [T._int4]: T.int4, [T._int8]: T.int8, [T._text]: T.text, [T._varchar]: T.varchar };
export const arrayOf = (elem: number): number | undefined => Object.entries(ARRAY_OF).find(([, e]) => e === elem)?.[0] as unknown as number | undefined;
export const elementOf = (oid: number): number | undefined => ARRAY_OF[oid];

export function family(t: PgType): Family {
  switch (t.oid) {
    case T.int2: case T.int4: case T.int8: case T.oid: return 'int';
    case T.float4: case T.float8: return 'float';
    case T.numeric: return 'numeric';
    case T.bool: return 'bool';
    case T.text: case T.varchar: return 'text';
    case T.date: case T.timestamp: case T.timestamptz: return 'datetime';
    case T.uuid: return 'uuid';
    case T.jsonb: return 'jsonb';
    case T.bytea: return 'bytea';
    case T.unknown: return 'unknown';
  }
  if (ARRAY_OF[t.oid] !== undefined) return 'array';
  if (t.category === 'E') return 'enum';
  return 'opaque';
}

export const intBits = (oid: number): number => (oid === T.int2 ? 16 : oid === T.int4 ? 32 : 64);

let textOrderIsBinary = false;
let caseMappingIsAscii = false;
/**
 * The upstream database's collation and ctype (pg_database.datcollate, datctype); until told,
 * pgfollow assumes neither is C and forwards whatever depends on them. Text order is SQLite's
 * BINARY order only under C/POSIX (and C.UTF-8, which compares code points); lower(), upper()
 * and ILIKE fold ASCII letters only (pgfollow forwards non-ASCII text) under a C ctype.
 */
export function setUpstreamCollation(collate: string, ctype: string = collate): void {
  textOrderIsBinary = /^(C|POSIX|C\.UTF-?8)$/i.test(collate);
  caseMappingIsAscii = /^(C|POSIX|C\.UTF-?8)$/i.test(ctype);
}

let upstreamVersion = 180000;
/**
 * The upstream's server_version_num, for the few things its version changes in what a client sees:
 * before 15 a boolean literal's column is named `bool` (it was a cast of 't'), `?column?` since.
 */
export function setUpstreamVersion(versionNum: number): void {
  upstreamVersion = versionNum;
}

export const boolLiteralName = (): string => (upstreamVersion < 150000 ? 'bool' : '?column?');

// What the statement being translated needs of collations: whether it compares, orders, groups or
// case-maps text, and whether it reads a text column whose collation is not known to be binary.
// Translation is synchronous, so module state serves (route.ts resets and reads it).
export const textUse = { semantics: false, nonBinary: false };

export const textOrderExact = (): boolean => { textUse.semantics = true; return textOrderIsBinary; };
export const asciiCaseMapping = (): boolean => { textUse.semantics = true; return caseMappingIsAscii; };
export const noteTextSemantics = (): void => { textUse.semantics = true; };

/**
 * Whether a column's collation (MirrorColumn.collation: 'default', a collation name, or
 * undefined when the proxy did not say) orders, compares and case-maps as bytes.
 */
export function binaryCollation(collation: string | undefined): boolean {
  if (collation === undefined) return false;
  if (collation === 'default') return textOrderIsBinary && caseMappingIsAscii;
  return /^(C|POSIX|ucs_basic)$/.test(collation);
}

/** Types whose stored SQLite value is already Postgres's text output (rendered as is). */
export function storedIsText(oid: number, category?: string): boolean {
  return ([T.text, T.varchar, T.name, T.bpchar, T.uuid, T.json, T.jsonb, T.time, T.timetz, T.date, T.numeric, T.interval] as number[]).includes(oid) || category === 'E';
}
