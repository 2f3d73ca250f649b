// The round-trip suite of the value mapping: for every Postgres type a table of edge values is
// inserted upstream and read back from SQLite, through streaming (a follow started before the
// inserts) and through the initial copy (a follow started after them). Both files must hold exactly
// the values written down here by hand (and their storage class), must equal each other, and each
// scalar value read back from SQLite must mean the same value to Postgres again.
//
// The expected SQLite values are written out literally: they are what docs/values.md's "Value mapping"
// promises, not what src/sqlite/values.ts happens to compute.

import t from 'tap';
import crypto from 'node:crypto';
import path from 'node:path';
import type pg from 'pg';
import { cluster, compareAll, database, followState, openSqlite, startWorker, tempDir, waitFor } from '../support/index.js';
import { waitCaughtUp } from '../../src/dev/wait.js';

const server = await cluster(t);
t.comment(`Postgres ${server.version}`);

type Value = null | bigint | number | string | Buffer;

interface TypeCase {
  /** table t_<name> (id int PRIMARY KEY, v <type>) */
  name: string;
  type: string;
  /** the SQLite declared type of v */
  declared: string;
  /** [SQL expression inserted upstream, the value SQLite must hold] */
  rows: [string, Value][];
  /** false when the SQLite value is JSON that Postgres cannot read back as the type directly */
  back?: boolean;
}

const hex = (s: string) => Buffer.from(s, 'hex');
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

// Every unicode plane and the characters that trip up encoders.
const UNICODE: [string, string][] = [
  ['2-byte UTF-8 (U+0080, U+00E9, U+07FF)', '\u0080 é \u07ff'],
  ['3-byte UTF-8 (U+0800, U+FFFD, U+FFFF)', '\u0800 \ufffd \uffff'],
  ['4-byte UTF-8, plane 1 (U+10000, U+1F600)', '\u{10000} \u{1F600}'],
  ['planes 2, 3, 14, 15, 16 (U+20000, U+30000, U+E0001, U+F0000, U+10FFFF)', '\u{20000}\u{30000}\u{E0001}\u{F0000}\u{10FFFF}'],
  ['combining marks', 'e\u0301 a\u0308\u0323 \u0915\u094d\u0937'],
  ['emoji with ZWJ, skin tone and flags', '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466} \u{1F44D}\u{1F3FD} \u{1F1E9}\u{1F1EA}'],
  ['BOM, RTL and zero-width characters', '\ufeff\u202eabc\u202c\u200b\u200c'],
  ['control characters, tab, CR, LF, backslash, quotes', '\u0001\u001f\u007f\t\r\n\\ "\' '],
];

const CASES: TypeCase[] = [
  { name: 'int2', type: 'smallint', declared: 'int2', rows: [['-32768', -32768n], ['32767', 32767n], ['0', 0n], ['NULL', null]] },
  { name: 'int4', type: 'integer', declared: 'int4', rows: [['-2147483648', -2147483648n], ['2147483647', 2147483647n]] },
  {
    name: 'int8', type: 'bigint', declared: 'int8', rows: [
      ['9223372036854775807', 9223372036854775807n], ['-9223372036854775808', -9223372036854775808n],
      ['9007199254740993', 9007199254740993n], ['-9007199254740993', -9007199254740993n], ['9007199254740992', 9007199254740992n], ['0', 0n],
    ],
  },
  { name: 'oid', type: 'oid', declared: 'oid_int', rows: [['4294967295', 4294967295n], ['0', 0n]] },
  {
    name: 'numeric', type: 'numeric', declared: 'numeric_text', rows: [
      ['123456789012345678901234567890.123456789012345678901234567890', '123456789012345678901234567890.123456789012345678901234567890'],
      ["'NaN'", 'NaN'], ["'Infinity'", 'Infinity'], ["'-Infinity'", '-Infinity'],
      ['-0.000', '0.000'], ['1.50', '1.50'], ['-1', '-1'],
      ["'1e-100'", '0.' + '0'.repeat(99) + '1'],
      ["'1e131071'", '1' + '0'.repeat(131071)], // the largest weight numeric accepts
      ["(repeat('9', 1000) || '.' || repeat('1', 1000))::numeric", '9'.repeat(1000) + '.' + '1'.repeat(1000)],
    ],
  },
  { name: 'numeric_12_2', type: 'numeric(12,2)', declared: 'numeric_text(12,2)', rows: [['1.5', '1.50'], ['-9999999999.99', '-9999999999.99'], ['0', '0.00']] },
  {
    name: 'float4', type: 'real', declared: 'float4_blob', rows: [
      ["'0.1'", 0.1], ["'-0'", -0], ["'0'", 0], ["'NaN'", 'NaN'], ["'Infinity'", Infinity], ["'-Infinity'", -Infinity],
      ["'3.4028235e38'", 3.4028235e38], ["'1e-45'", 1e-45], ["'16777217'", 16777216],
    ],
  },
  {
    name: 'float8', type: 'double precision', declared: 'float8_blob', rows: [
      ["'-0'", -0], ["'NaN'", 'NaN'], ["'Infinity'", Infinity], ["'-Infinity'", -Infinity],
      ["'1.7976931348623157e308'", 1.7976931348623157e308], ["'5e-324'", 5e-324], ["'0.30000000000000004'", 0.30000000000000004],
      ["'2'", 2], ["'-1.5'", -1.5], ["'9007199254740993'", 9007199254740992], ['NULL', null],
    ],
  },
  { name: 'bool', type: 'boolean', declared: 'bool_int', rows: [['true', 1n], ['false', 0n], ['NULL', null]] },
  {
    name: 'text', type: 'text', declared: 'text', rows: [
      ["''", ''], ['NULL', null], ["'NULL'", 'NULL'], ["'1'", '1'], ["' 2.5 '", ' 2.5 '], ["'12e3'", '12e3'], ["'0x10'", '0x10'],
      ...UNICODE.map(([, s]): [string, Value] => [lit(s), s]),
    ],
  },
  { name: 'varchar', type: 'varchar(5)', declared: 'varchar(5)', rows: [["'007'", '007'], ["''", ''], ["'ab𐀀cd'", 'ab𐀀cd']] },
  { name: 'bpchar', type: 'char(3)', declared: 'bpchar(3)', rows: [["'1'", '1  '], ["''", '   '], ["'é'", 'é  ']] },
  { name: 'name', type: 'name', declared: 'name_text', rows: [["'12'", '12'], ["'pg_class'", 'pg_class']] },
  { name: 'char1', type: '"char"', declared: 'char', rows: [["'x'", 'x'], ["'1'", '1']] },
  { name: 'citext', type: 'citext', declared: 'citext', rows: [["'MiXeD Case'", 'MiXeD Case'], ["''", ''], ["'42'", '42']] },
  {
    name: 'bytea', type: 'bytea', declared: 'bytea_blob', rows: [
      ["''::bytea", Buffer.alloc(0)], ['NULL', null], ["'\\x00ff'::bytea", hex('00ff')], ["'abc'::bytea", Buffer.from('abc')],
      ["'\\xc328e2'::bytea", hex('c328e2')], // not valid UTF-8: must stay bytes
      ["'\\x3132'::bytea", Buffer.from('12')],
    ],
  },
  {
    name: 'json', type: 'json', declared: 'json_text', rows: [
      [`'{"b": 1,  "a": [1, 2.50]}'`, '{"b": 1,  "a": [1, 2.50]}'], ["'null'", 'null'], ['NULL', null],
      [`'"\\u00e9"'`, '"\\u00e9"'], ["'12345678901234567890'", '12345678901234567890'],
    ],
  },
  {
    name: 'jsonb', type: 'jsonb', declared: 'jsonb_text', rows: [
      [`'{"b":1,"a":[1,2.50]}'`, '{"a": [1, 2.50], "b": 1}'], ["'null'", 'null'], ['NULL', null],
      [`'"\\u00e9"'`, '"é"'], ["'1e2'", '100'], ["'12345678901234567890.5'", '12345678901234567890.5'], [`'"𐀀\\n"'`, '"𐀀\\n"'],
    ],
  },
  {
    name: 'uuid', type: 'uuid', declared: 'uuid_text', rows: [
      ["'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
      ["'{00000000000000000000000000000000}'", '00000000-0000-0000-0000-000000000000'],
    ],
  },
  {
    name: 'date', type: 'date', declared: 'date_text', rows: [
      ["'2024-02-29'", '2024-02-29'], ["'0044-03-15 BC'", '0044-03-15 BC'], ["'infinity'", 'infinity'], ["'-infinity'", '-infinity'],
      ["'5874897-12-31'", '5874897-12-31'], ["'4714-11-24 BC'", '4714-11-24 BC'], ["'0001-01-01'", '0001-01-01'],
    ],
  },
  { name: 'time', type: 'time', declared: 'time_text', rows: [["'24:00:00'", '24:00:00'], ["'12:34:56.789'", '12:34:56.789'], ["'00:00:00'", '00:00:00'], ["'23:59:59.999999'", '23:59:59.999999']] },
  { name: 'timetz', type: 'timetz', declared: 'timetz_text', rows: [["'12:34:56.5+05:30'", '12:34:56.5+05:30'], ["'00:00:00-15:59'", '00:00:00-15:59'], ["'12:00:00+00'", '12:00:00+00']] },
  {
    name: 'timestamp', type: 'timestamp', declared: 'timestamp_text', rows: [
      ["'2024-01-02 03:04:05.123456'", '2024-01-02T03:04:05.123456'], ["'2024-01-02 03:04:05'", '2024-01-02T03:04:05'],
      ["'0044-03-15 01:02:03 BC'", '0044-03-15T01:02:03 BC'], ["'infinity'", 'infinity'], ["'-infinity'", '-infinity'],
      ["'294276-12-31 23:59:59.999999'", '294276-12-31T23:59:59.999999'], ["'4714-11-24 00:00:00 BC'", '4714-11-24T00:00:00 BC'],
    ],
  },
  {
    name: 'timestamptz', type: 'timestamptz', declared: 'timestamptz_text', rows: [
      ["'2024-01-02 08:34:05.123456+05:30'", '2024-01-02T03:04:05.123456Z'], ["'2024-01-01 00:00:00-01'", '2024-01-01T01:00:00.000000Z'],
      ["'2000-01-01 00:00:00.5+00'", '2000-01-01T00:00:00.500000Z'], ["'0044-03-15 12:00:00+02 BC'", '0044-03-15T10:00:00.000000Z BC'],
      ["'infinity'", 'infinity'], ["'-infinity'", '-infinity'], ["'294276-12-31 23:59:59.999999+00'", '294276-12-31T23:59:59.999999Z'],
    ],
  },
  { name: 'timestamptz_3', type: 'timestamptz(3)', declared: 'timestamptz_text(3)', rows: [["'2024-01-02 03:04:05.123456+00'", '2024-01-02T03:04:05.123000Z']] },
  {
    name: 'interval', type: 'interval', declared: 'in_terval_text', rows: [
      ["'1 year 2 months 3 days 04:05:06.789'", '1 year 2 mons 3 days 04:05:06.789'], ["'0'", '00:00:00'], ["'-1 second'", '-00:00:01'],
      ["'178000000 years'", '178000000 years'], ["'1 day -1 second'", '1 day -00:00:01'], ["'-3 mons'", '-3 mons'],
    ],
  },
  {
    name: 'inet', type: 'inet', declared: 'inet_text', rows: [
      ["'10.0.0.1'", '10.0.0.1'], ["'192.168.1.5/24'", '192.168.1.5/24'], ["'::ffff:1.2.3.4'", '::ffff:1.2.3.4'], ["'2001:DB8::1/64'", '2001:db8::1/64'],
    ],
  },
  { name: 'cidr', type: 'cidr', declared: 'cidr_text', rows: [["'10/8'", '10.0.0.0/8'], ["'2001:db8::/32'", '2001:db8::/32']] },
  { name: 'macaddr', type: 'macaddr', declared: 'macaddr_text', rows: [["'08-00-2B-01-02-03'", '08:00:2b:01:02:03']] },
  { name: 'macaddr8', type: 'macaddr8', declared: 'macaddr8_text', rows: [["'08:00:2b:01:02:03:04:05'", '08:00:2b:01:02:03:04:05']] },
  {
    name: 'money', type: 'money', declared: 'money_text', rows: [
      ["'12.34'", '$12.34'], ["'-92233720368547758.08'", '-$92,233,720,368,547,758.08'], ["'0'", '$0.00'],
    ],
  },
  { name: 'bit', type: 'bit(3)', declared: 'bit_text(3)', rows: [["B'101'", '101'], ["B'001'", '001']] },
  { name: 'varbit', type: 'varbit', declared: 'varbit_text', rows: [["B''", ''], ["B'0101'", '0101']] },
  { name: 'xml', type: 'xml', declared: 'xml_text', rows: [["'<a x=\"1\">é</a>'", '<a x="1">é</a>'], ["'just text'", 'just text'], ["''", '']] },
  { name: 'enum', type: 'mood', declared: 'mood_text', rows: [["'sad'", 'sad'], ["'très content'", 'très content'], ["'1'", '1']] },
  { name: 'domain_numeric', type: 'price', declared: 'price_text', rows: [['1.5', '1.50'], ['0', '0.00'], ['NULL', null]] },
  { name: 'domain_text', type: 'code', declared: 'code_text', rows: [["'007'", '007'], ["''", '']] },
  { name: 'domain_domain', type: 'positive_price', declared: 'positive_price_text', rows: [['12', '12.00']] },
  { name: 'domain_int8', type: 'big', declared: 'big_int', rows: [['9223372036854775807', 9223372036854775807n]] },
  { name: 'domain_float8', type: 'ratio', declared: 'ratio_blob', rows: [["'-0'", -0], ["'NaN'", 'NaN'], ["'0.5'", 0.5]] },
  {
    name: 'composite', type: 'pair', declared: 'pair_text', back: false, rows: [
      ["ROW(1, 'x y', 1.50, '\\x00ff', 'NaN', '2024-01-02 03:04:05+01', true, 9223372036854775807)::pair",
        '{"a":1,"b":"x y","c":"1.50","d":"\\\\x00ff","e":"NaN","f":"2024-01-02T02:04:05.000000Z","g":true,"h":9223372036854775807}'],
      ["ROW(NULL, '', NULL, '', '-0', NULL, false, NULL)::pair",
        '{"a":null,"b":"","c":null,"d":"\\\\x","e":-0,"f":null,"g":false,"h":null}'],
      ["ROW(-2147483648, 'say \"hi\", (ok) \\ é𐀀', 'Infinity', NULL, '-Infinity', 'infinity', NULL, 0)::pair",
        '{"a":-2147483648,"b":"say \\"hi\\", (ok) \\\\ é𐀀","c":"Infinity","d":null,"e":"-Infinity","f":"infinity","g":null,"h":0}'],
      ['ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::pair',
        '{"a":null,"b":null,"c":null,"d":null,"e":null,"f":null,"g":null,"h":null}'],
      ['NULL', null],
    ],
  },
  {
    name: 'composite_nested', type: 'outer_t', declared: 'outer_t_text', back: false, rows: [
      ["ROW(ROW(1, 'a', 2, NULL, 1.5, NULL, NULL, NULL)::pair, ARRAY['x', NULL, 'y z'], 'ok', '[1,2)')::outer_t",
        '{"p":{"a":1,"b":"a","c":"2","d":null,"e":1.5,"f":null,"g":null,"h":null},"tags":["x",null,"y z"],"m":"ok","r":{"lower":1,"upper":2,"lower_inc":true,"upper_inc":false}}'],
      ['ROW(NULL, NULL, NULL, NULL)::outer_t', '{"p":null,"tags":null,"m":null,"r":null}'],
    ],
  },
  {
    name: 'int4range', type: 'int4range', declared: 'in_t4range_text', back: false, rows: [
      ["'[1,5)'", '{"lower":1,"upper":5,"lower_inc":true,"upper_inc":false}'],
      ["'(1,5]'", '{"lower":2,"upper":6,"lower_inc":true,"upper_inc":false}'],
      ["'empty'", '"empty"'],
      ["'(,)'", '{"lower":null,"upper":null,"lower_inc":false,"upper_inc":false}'],
      ["'[-3,)'", '{"lower":-3,"upper":null,"lower_inc":true,"upper_inc":false}'],
    ],
  },
  { name: 'int8range', type: 'int8range', declared: 'in_t8range_text', back: false, rows: [["'[9007199254740993,9223372036854775807)'", '{"lower":9007199254740993,"upper":9223372036854775807,"lower_inc":true,"upper_inc":false}']] },
  { name: 'numrange', type: 'numrange', declared: 'numrange_text', back: false, rows: [["'[1.50,2.0]'", '{"lower":"1.50","upper":"2.0","lower_inc":true,"upper_inc":true}']] },
  {
    name: 'tstzrange', type: 'tstzrange', declared: 'tstzrange_text', back: false, rows: [
      ["'[2024-01-01 00:00:00.5+01,infinity)'", '{"lower":"2023-12-31T23:00:00.500000Z","upper":"infinity","lower_inc":true,"upper_inc":false}'],
    ],
  },
  { name: 'daterange', type: 'daterange', declared: 'daterange_text', back: false, rows: [["'[2020-01-01,2020-01-05]'", '{"lower":"2020-01-01","upper":"2020-01-06","lower_inc":true,"upper_inc":false}']] },
  {
    name: 'textrange', type: 'textrange', declared: 'textrange', back: false, rows: [
      ["textrange('a b', 'z\"', '[]')", '{"lower":"a b","upper":"z\\"","lower_inc":true,"upper_inc":true}'],
      ["textrange('', NULL)", '{"lower":"","upper":null,"lower_inc":true,"upper_inc":false}'],
    ],
  },
  {
    name: 'multirange', type: 'int4multirange', declared: 'in_t4multirange_text', back: false, rows: [
      ["'{[1,3),[5,7)}'", '[{"lower":1,"upper":3,"lower_inc":true,"upper_inc":false},{"lower":5,"upper":7,"lower_inc":true,"upper_inc":false}]'],
      ["'{}'", '[]'],
    ],
  },
  {
    name: 'int4_array', type: 'integer[]', declared: 'in_t4_array_text', back: false, rows: [
      ["'{{1,2},{NULL,4}}'", '[[1,2],[null,4]]'], ["'{}'", '[]'], ['NULL', null], ['ARRAY[NULL]::int[]', '[null]'],
      ["'{{{1},{2}},{{3},{4}}}'", '[[[1],[2]],[[3],[4]]]'],
      ["'[0:1]={7,8}'", '[7,8]'], // custom lower bounds are dropped (see docs/values.md)
    ],
  },
  { name: 'int8_array', type: 'bigint[]', declared: 'in_t8_array_text', back: false, rows: [["'{9223372036854775807,-9223372036854775808,NULL}'", '[9223372036854775807,-9223372036854775808,null]']] },
  {
    name: 'text_array', type: 'text[]', declared: 'text_array', back: false, rows: [
      [`ARRAY['a b', 'c"d', NULL, 'NULL', '', ' x', 'a,b', 'a\\b', '{}', 'é𐀀', E'\\n']`, '["a b","c\\"d",null,"NULL",""," x","a,b","a\\\\b","{}","é𐀀","\\n"]'],
      ["'{{x,y},{NULL,\"\"}}'", '[["x","y"],[null,""]]'],
    ],
  },
  { name: 'numeric_array', type: 'numeric[]', declared: 'numeric_array_text', back: false, rows: [["'{NaN,1.50,-0.0,NULL}'", '["NaN","1.50","0.0",null]']] },
  { name: 'float8_array', type: 'float8[]', declared: 'float8_array_text', back: false, rows: [["'{1.5,NaN,-Infinity,Infinity,-0,5e-324}'", '[1.5,"NaN","-Infinity","Infinity",-0,5e-324]']] },
  { name: 'bool_array', type: 'boolean[]', declared: 'bool_array_text', back: false, rows: [["'{t,f,NULL}'", '[true,false,null]']] },
  { name: 'jsonb_array', type: 'jsonb[]', declared: 'jsonb_array_text', back: false, rows: [[`ARRAY['{"a": 1}'::jsonb, NULL, '[1, "x"]', 'null']`, '[{"a": 1},null,[1, "x"],null]']] },
  { name: 'bytea_array', type: 'bytea[]', declared: 'bytea_array_text', back: false, rows: [["ARRAY['\\x00ff'::bytea, NULL, '']", '["\\\\x00ff",null,"\\\\x"]']] },
  {
    name: 'timestamptz_array', type: 'timestamptz[]', declared: 'timestamptz_array_text', back: false, rows: [
      ["ARRAY['2024-01-01 00:00:00+01'::timestamptz, 'infinity', NULL]", '["2023-12-31T23:00:00.000000Z","infinity",null]'],
    ],
  },
  { name: 'date_array', type: 'date[]', declared: 'date_array_text', back: false, rows: [["'{2024-02-29,-infinity,\"0044-03-15 BC\"}'", '["2024-02-29","-infinity","0044-03-15 BC"]']] },
  { name: 'uuid_array', type: 'uuid[]', declared: 'uuid_array_text', back: false, rows: [["ARRAY['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid]", '["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]']] },
  { name: 'enum_array', type: 'mood[]', declared: 'mood_array_text', back: false, rows: [["ARRAY['sad', 'très content', NULL]::mood[]", '["sad","très content",null]']] },
  {
    name: 'composite_array', type: 'pair[]', declared: 'pair_array_text', back: false, rows: [
      ["ARRAY[ROW(1, 'x,y', NULL, NULL, NULL, NULL, true, NULL)::pair, NULL]",
        '[{"a":1,"b":"x,y","c":null,"d":null,"e":null,"f":null,"g":true,"h":null},null]'],
    ],
  },
  { name: 'range_array', type: 'int4range[]', declared: 'in_t4range_array_text', back: false, rows: [["ARRAY['[1,2)'::int4range, 'empty']", '[{"lower":1,"upper":2,"lower_inc":true,"upper_inc":false},"empty"]']] },
  { name: 'domain_array', type: 'code[]', declared: 'code_array_text', back: false, rows: [["ARRAY['A1', NULL]::code[]", '["A1",null]']] },
];

const TYPES_SQL = `
  CREATE EXTENSION IF NOT EXISTS citext;
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'très content', '1');
  CREATE DOMAIN price AS numeric(10,2) CHECK (VALUE >= 0);
  CREATE DOMAIN positive_price AS price CHECK (VALUE > 0);
  CREATE DOMAIN code AS text CHECK (VALUE ~ '^[A-Z0-9]*$');
  CREATE DOMAIN big AS int8;
  CREATE DOMAIN ratio AS float8;
  CREATE TYPE pair AS (a int, b text, c numeric, d bytea, e float8, f timestamptz, g boolean, h int8);
  CREATE TYPE outer_t AS (p pair, tags text[], m mood, r int4range);
  CREATE TYPE textrange AS RANGE (subtype = text, collation = "C");`;

function tableSql(c: TypeCase): string {
  const values = c.rows.map(([sql], i) => `(${i + 1}, ${sql})`).join(', ');
  return `CREATE TABLE t_${c.name} (id int PRIMARY KEY, v ${c.type}); INSERT INTO t_${c.name} VALUES ${values};`;
}

/** md5 hex digests of '1'..'n' concatenated: what string_agg(md5(g::text), '') gives upstream. */
function md5Text(n: number, prefix = ''): string {
  const parts: string[] = [];
  for (let g = 1; g <= n; g++) parts.push(crypto.createHash('md5').update(prefix + g).digest('hex'));
  return parts.join('');
}
function md5Bytes(n: number, prefix = ''): Buffer {
  const parts: Buffer[] = [];
  for (let g = 1; g <= n; g++) parts.push(crypto.createHash('md5').update(prefix + g).digest());
  return Buffer.concat(parts);
}

const storageClass = (v: Value): string =>
  v === null ? 'null' : typeof v === 'bigint' ? 'integer' : typeof v === 'number' ? 'real' : typeof v === 'string' ? 'text' : 'blob';

function show(v: Value): string {
  if (v === null) return 'NULL';
  if (Buffer.isBuffer(v)) return v.length > 64 ? `<${v.length} bytes>` : `x'${v.toString('hex')}'`;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  return v.length > 120 ? JSON.stringify(v.slice(0, 60) + '…') + ` (${v.length} chars)` : JSON.stringify(v);
}

function same(a: Value, b: Value): boolean {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  return Object.is(a, b);
}

/** A SQLite value as a query parameter Postgres reads as the column type. */
function param(v: Value): string | Buffer | null {
  if (v === null || Buffer.isBuffer(v)) return v;
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  return String(v);
}

function sha256(v: Value): string {
  if (v === null) return '';
  const h = crypto.createHash('sha256');
  if (Buffer.isBuffer(v) || typeof v === 'string') h.update(v);
  else h.update(Object.is(v, -0) ? '-0' : String(v));
  return h.digest('hex');
}

/** A digest of every table of a SQLite file: its rows (values and storage classes) as a sorted multiset. */
function fileDigest(file: string): Map<string, string> {
  const db = openSqlite(file);
  try {
    const out = new Map<string, string>();
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").pluck().all() as string[];
    // _pgfollow_state differs between the files (positions, slot); user tables and the catalog do not.
    for (const name of tables.filter((n) => n !== '_pgfollow_state')) {
      const rows = db.prepare(`SELECT * FROM "${name.replace(/"/g, '""')}"`).raw().all() as Value[][];
      const lines = rows.map((r) => r.map((v) => storageClass(v) + ':' + sha256(v)).join('|')).sort();
      out.set(name, sha256(lines.join('\n')));
    }
    return out;
  } finally {
    db.close();
  }
}

async function startFollow(client: pg.Client, conninfo: string, file: string): Promise<number> {
  const id = Number((await client.query('SELECT start_follow($1, $2) AS id', [conninfo, file])).rows[0].id);
  await waitFor(async () => {
    const s = await followState(client, id);
    if (s?.state === 'error') throw new Error(`follow ${file}: ${s.last_error}`);
    return s?.state === 'streaming';
  }, { what: `follow ${file} streaming`, timeoutMs: 60_000 });
  return id;
}

t.test('every type arrives exactly, through streaming and through the initial copy', async (t) => {
  const { conninfo, client } = await database(t, server);
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  const streamFile = path.join(dataDir, 'stream.db');
  const copyFile = path.join(dataDir, 'copy.db');
  const lcMonetary = (await client.query('SHOW lc_monetary')).rows[0].lc_monetary;
  t.comment(`server_encoding UTF8 expected; lc_monetary ${lcMonetary}`);

  // Streaming: the follow exists before the types, tables and rows.
  await startFollow(client, conninfo, 'stream.db');
  await client.query(TYPES_SQL);
  await client.query(CASES.map(tableSql).join('\n'));

  // TOAST: values stored out of line, then UPDATEs that leave them alone: pgoutput sends them as
  // "unchanged" and the stored value must stay. With a key, and under REPLICA IDENTITY FULL.
  const bigText = md5Text(2000); // 64 000 hex characters
  const bigBytes = md5Bytes(2000, 'b'); // 32 000 random bytes
  await client.query(`
    CREATE TABLE toasty (id int PRIMARY KEY, n int, t text, b bytea);
    CREATE TABLE toasty_full (n int, t text, b bytea);
    INSERT INTO toasty SELECT 1, 0, string_agg(md5(g::text), ''), string_agg(decode(md5('b' || g), 'hex'), ''::bytea) FROM generate_series(1, 2000) g;
    INSERT INTO toasty_full SELECT n, t, b FROM toasty;`);
  for (const table of ['toasty', 'toasty_full']) {
    const toast = (await client.query(`SELECT reltoastrelid::regclass::text AS rel FROM pg_class WHERE oid = $1::regclass`, [table])).rows[0].rel;
    const chunks = Number((await client.query(`SELECT count(*) AS n FROM ${toast}`)).rows[0].n);
    t.ok(chunks > 10, `${table}: the big values are stored out of line (${chunks} TOAST chunks)`);
  }
  await client.query('UPDATE toasty SET n = 1; UPDATE toasty_full SET n = 1');

  // 10 MB text and 10 MB bytea in one row.
  const hugeText = md5Text(327_680); // 10 485 760 characters
  const hugeBytes = md5Bytes(655_360, 'h'); // 10 485 760 bytes
  await client.query('CREATE TABLE huge (id int PRIMARY KEY, t text, b bytea)');
  await waitCaughtUp(client, streamFile, 60_000);
  let t0 = Date.now();
  await client.query(`INSERT INTO huge SELECT 1,
      (SELECT string_agg(md5(g::text), '' ORDER BY g) FROM generate_series(1, 327680) g),
      (SELECT string_agg(decode(md5('h' || g), 'hex'), ''::bytea ORDER BY g) FROM generate_series(1, 655360) g)`);
  const insertMs = Date.now() - t0;
  t0 = Date.now();
  await waitCaughtUp(client, streamFile, 60_000);
  t.comment(`10 MB text + 10 MB bytea: INSERT upstream ${insertMs} ms, then in SQLite by streaming ${Date.now() - t0} ms later`);

  // The initial copy: a second follow started after everything is in place.
  t0 = Date.now();
  await startFollow(client, conninfo, 'copy.db');
  await waitCaughtUp(client, copyFile, 60_000);
  t.comment(`initial copy of all type tables (incl. the 20 MB row) streaming after ${Date.now() - t0} ms`);

  // An UPDATE leaving TOASTed values alone, now also for the follow whose values came by copy.
  await client.query('UPDATE toasty SET n = 2; UPDATE toasty_full SET n = 2');
  await waitCaughtUp(client, streamFile, 60_000);
  await waitCaughtUp(client, copyFile, 60_000);

  for (const [how, file] of [['streaming', streamFile], ['initial copy', copyFile]] as const) {
    t.test(`values through ${how}`, async (t) => {
      const db = openSqlite(file);
      t.teardown(() => db.close());
      for (const c of CASES) {
        const info = db.prepare(`PRAGMA table_info("t_${c.name}")`).all() as { name: string; type: string }[];
        // PRAGMA table_info spells SQLite's own type names in capitals (text → TEXT).
        t.equal(info.find((i) => i.name === 'v')?.type.toLowerCase(), c.declared.toLowerCase(), `${c.name}: declared type ${c.declared}`);
        const rows = db.prepare(`SELECT id, v, typeof(v) AS class FROM "t_${c.name}" ORDER BY id`).all() as { id: bigint; v: Value; class: string }[];
        t.equal(rows.length, c.rows.length, `${c.name}: ${c.rows.length} rows`);
        c.rows.forEach(([sql, want], i) => {
          const got = rows[i];
          t.ok(got !== undefined && same(got.v, want), `${c.name} ${sql.length > 60 ? sql.slice(0, 60) + '…' : sql} → ${show(want)}`, { found: got === undefined ? 'missing' : show(got.v) });
          t.equal(got?.class, storageClass(want), `${c.name} ${sql.length > 60 ? sql.slice(0, 60) + '…' : sql}: stored as ${storageClass(want)}`);
        });
      }

      for (const table of ['toasty', 'toasty_full']) {
        const r = db.prepare(`SELECT n, t, b FROM ${table}`).all() as { n: bigint; t: string; b: Buffer }[];
        t.equal(r.length, 1, `${table}: one row`);
        t.equal(r[0]?.n, 2n, `${table}: the UPDATE arrived`);
        t.ok(r[0]?.t === bigText, `${table}: the untouched 64 kB text is kept (${r[0]?.t?.length ?? 'NULL'} chars)`);
        t.ok(Buffer.isBuffer(r[0]?.b) && r[0]!.b.equals(bigBytes), `${table}: the untouched 32 kB bytea is kept (${r[0]?.b?.length ?? 'NULL'} bytes)`);
      }

      const huge = db.prepare('SELECT t, b, typeof(t) AS tc, typeof(b) AS bc FROM huge').get() as { t: string; b: Buffer; tc: string; bc: string } | undefined;
      t.ok(huge?.t === hugeText, `10 MB text arrives whole (${huge?.t?.length ?? 'no'} chars)`);
      t.ok(Buffer.isBuffer(huge?.b) && huge!.b.equals(hugeBytes), `10 MB bytea arrives whole (${huge?.b?.length ?? 'no'} bytes)`);
      t.same([huge?.tc, huge?.bc], ['text', 'blob'], '10 MB values stored as TEXT and BLOB');

      // The catalog a reader decodes with: each column's Postgres type.
      const cat = db.prepare(`
        SELECT t.pg_name, c.pg_type, c.sqlite_type, c.storage FROM _pgfollow_columns c JOIN _pgfollow_tables t ON t.oid = c.table_oid
         WHERE c.name = 'v'`).all() as { pg_name: string; pg_type: string; sqlite_type: string; storage: string }[];
      const byTable = new Map(cat.map((r) => [r.pg_name, r]));
      // The capture names types as seen from search_path pg_catalog: user types schema-qualified.
      await client.query('BEGIN; SET LOCAL search_path = pg_catalog');
      const upstreamTypes = new Map((await client.query(`
        SELECT c.relname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         WHERE a.attname = 'v' AND c.relname LIKE 't\\_%' AND c.relkind = 'r'`)).rows.map((r) => [r.relname as string, r.type as string]));
      await client.query('COMMIT');
      t.equal(upstreamTypes.get('t_enum'), 'public.mood', 'user types are recorded schema-qualified');
      for (const c of CASES) {
        const row = byTable.get(`t_${c.name}`);
        t.equal(row?.pg_type, upstreamTypes.get(`t_${c.name}`), `_pgfollow_columns: t_${c.name}.v is ${upstreamTypes.get(`t_${c.name}`)}`);
        t.equal(row?.sqlite_type, c.declared, `_pgfollow_columns: t_${c.name}.v declared ${c.declared}`);
      }
    });
  }

  t.test('read back from SQLite, Postgres sees the same value', async (t) => {
    const db = openSqlite(streamFile);
    t.teardown(() => db.close());
    for (const c of CASES) {
      if (c.back === false) continue;
      const rows = db.prepare(`SELECT id, v FROM "t_${c.name}" ORDER BY id`).all() as { id: bigint; v: Value }[];
      for (const r of rows) {
        const { rows: [res] } = await client.query(
          `SELECT v::text AS upstream, $2::${c.type}::text AS back FROM t_${c.name} WHERE id = $1`, [String(r.id), param(r.v)]);
        t.ok(res && res.upstream === res.back, `${c.name} id ${r.id}: ${show(r.v)} reads back as ${res?.back === null ? 'NULL' : JSON.stringify(res?.back)}`,
          { upstream: res?.upstream });
      }
    }
  });

  t.test('the two files are equal, and equal to Postgres', async (t) => {
    const a = fileDigest(streamFile);
    const b = fileDigest(copyFile);
    t.same([...a.keys()], [...b.keys()], 'same tables');
    for (const [name, digest] of a) t.equal(b.get(name), digest, `${name}: streamed and copied contents are identical`);
    for (const file of [streamFile, copyFile]) {
      const cmp = await compareAll(client, file);
      t.ok(cmp.equal, `${path.basename(file)}: ${cmp.report}`);
    }
  });
});

t.test('stored generated columns', async (t) => {
  const { conninfo, client } = await database(t, server);
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  const streamFile = path.join(dataDir, 'gen-stream.db');
  const copyFile = path.join(dataDir, 'gen-copy.db');
  const streamId = await startFollow(client, conninfo, 'gen-stream.db');
  await client.query(`
    CREATE TABLE gen (id int PRIMARY KEY, a int, s text,
      twice int GENERATED ALWAYS AS (a * 2) STORED,
      label text GENERATED ALWAYS AS (upper(s) || '!') STORED)`);
  await waitCaughtUp(client, streamFile);
  await client.query("INSERT INTO gen (id, a, s) VALUES (1, 21, 'e'), (2, NULL, 'x')");
  const expected = (rows: [number, number | null, string][]) => rows.map(([id, twice, label]) => ({ id: BigInt(id), twice: twice === null ? null : BigInt(twice), label }));
  const read = (file: string) => {
    const db = openSqlite(file);
    try {
      return db.prepare('SELECT id, twice, label FROM gen ORDER BY id').all();
    } finally {
      db.close();
    }
  };

  if (server.version >= 18) {
    await waitCaughtUp(client, streamFile);
    t.same(read(streamFile), expected([[1, 42, 'E!'], [2, null, 'X!']]), 'streamed rows carry the generated values');
    await startFollow(client, conninfo, 'gen-copy.db');
    await waitCaughtUp(client, copyFile);
    t.same(read(copyFile), expected([[1, 42, 'E!'], [2, null, 'X!']]), 'copied rows carry the generated values');
    await client.query("UPDATE gen SET a = 5, s = 'b' WHERE id = 2");
    await waitCaughtUp(client, streamFile);
    await waitCaughtUp(client, copyFile);
    for (const file of [streamFile, copyFile]) {
      t.same(read(file), expected([[1, 42, 'E!'], [2, 10, 'B!']]), `${path.basename(file)}: an UPDATE recomputes them`);
      const cmp = await compareAll(client, file);
      t.ok(cmp.equal, cmp.report);
    }
    return;
  }

  // Before Postgres 18, logical replication never sends generated columns: the table is held in
  // error (pgfollow.follow_tables) with an error naming it and the columns, never with NULL in
  // their place; the follow itself keeps streaming.
  const heldError = (id: number) => waitFor(async () => {
    const { rows } = await client.query("SELECT last_error FROM pgfollow.follow_tables WHERE follow = $1 AND table_name = 'gen'", [id]);
    return rows[0]?.last_error as string | undefined;
  }, { what: `gen held in error by follow ${id}`, timeoutMs: 30_000 });
  const err = await heldError(streamId);
  t.match(err, /^CANNOT_MIRROR: .*public\.gen.*twice, label/, 'CANNOT_MIRROR names the table and the columns');
  t.match(err, /Postgres 18/, 'and says what would make it work');
  t.equal((await followState(client, streamId))?.state, 'streaming', 'the follow streams on');
  t.same(read(streamFile), [], 'no row with missing generated values was stored');

  // The initial copy reads them; the first change streamed afterwards holds that follow's table too.
  const copyId = await startFollow(client, conninfo, 'gen-copy.db');
  await waitCaughtUp(client, copyFile);
  t.same(read(copyFile), expected([[1, 42, 'E!'], [2, null, 'X!']]), 'copied rows carry the generated values');
  await client.query("UPDATE gen SET a = 5, s = 'b' WHERE id = 2");
  t.match(await heldError(copyId), /CANNOT_MIRROR: .*public\.gen/, 'the UPDATE holds the table');
  t.same(read(copyFile), expected([[1, 42, 'E!'], [2, null, 'X!']]), 'SQLite keeps the last exact state');
});
