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

/** The session settings output depends on (Postgres's text output of dates, intervals, floats, bytea). */
export interface RenderSettings { timeZone: string; dateStyle: string; intervalStyle: string; extraFloatDigits: number; byteaOutput: string }
