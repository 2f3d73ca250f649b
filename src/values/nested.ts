// Values that hold values: arrays, composites, ranges and multiranges, read from their text output
// into JSON text, each element through the converter of its own type.

import { PgFollowError } from '../errors.js';
import type { Converter } from './entry.js';
import type { TypeDesc } from '../capture/desc.js';

export function decodeError(t: TypeDesc, reason: string): PgFollowError {
  // Row data stays out of the message; the type and the reason say enough to find the column.
  return new PgFollowError('CANNOT_MIRROR', `cannot decode a value of type ${t.schema}.${t.name}: ${reason}`);
}

// ---------------------------------------------------------------------------------------------
// Arrays: array_out prints '{a,"b c",NULL,{nested}}', preceded by '[lo:hi]=' when a lower bound
// is not 1. Elements are double-quoted when empty, 'NULL', or holding a delimiter, brace, quote,
// backslash or space; inside quotes a backslash escapes the next character.
// ---------------------------------------------------------------------------------------------

interface Cursor {
  s: string;
  i: number;
}

export function arrayConverter(t: TypeDesc, el: Converter, delimiter: string): Converter {
  const delim = delimiter.charCodeAt(0);
  const toJson = (s: string): string => {
    const c: Cursor = { s, i: 0 };
    if (s.charCodeAt(0) === 91 /* [ */) {
      const eq = s.indexOf('=');
      if (eq < 0) throw decodeError(t, 'array dimensions without "="');
      c.i = eq + 1;
    }
    const out = arrayLevel(c, el, delim, t);
    skipSpace(c);
    if (c.i !== s.length) throw decodeError(t, `unexpected text after the array at offset ${c.i}`);
    return out;
  };
  return { storage: 'TEXT', decode: toJson, json: toJson };
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function skipSpace(c: Cursor): void {
  while (c.i < c.s.length && isSpace(c.s.charCodeAt(c.i))) c.i++;
}

function arrayLevel(c: Cursor, el: Converter, delim: number, t: TypeDesc): string {
  const s = c.s;
  skipSpace(c);
  if (s.charCodeAt(c.i) !== 123 /* { */) throw decodeError(t, `expected "{" at offset ${c.i}`);
  c.i++;
  skipSpace(c);
  if (s.charCodeAt(c.i) === 125 /* } */) {
    c.i++;
    return '[]';
  }
  let out = '[';
  for (;;) {
    skipSpace(c);
    const ch = s.charCodeAt(c.i);
    if (ch === 123 /* { */) {
      out += arrayLevel(c, el, delim, t);
    } else if (ch === 34 /* " */) {
      out += el.json(readArrayQuoted(c, t));
    } else {
      out += readArrayUnquoted(c, el, delim, t);
    }
    skipSpace(c);
    const sep = s.charCodeAt(c.i++);
    if (sep === delim) {
      out += ',';
    } else if (sep === 125 /* } */) {
      return out + ']';
    } else {
      throw decodeError(t, `expected a delimiter or "}" at offset ${c.i - 1}`);
    }
  }
}

function readArrayQuoted(c: Cursor, t: TypeDesc): string {
  const s = c.s;
  let i = c.i + 1;
  let start = i;
  let out = '';
  for (;;) {
    if (i >= s.length) throw decodeError(t, 'unterminated quoted array element');
    const ch = s.charCodeAt(i);
    if (ch === 34) break;
    if (ch === 92) {
      out += s.substring(start, i);
      start = i + 1; // the escaped character is kept as it is
      i += 2;
    } else {
      i++;
    }
  }
  c.i = i + 1;
  return out + s.substring(start, i);
}

/** An unquoted element, as JSON: 'null' for NULL. */
function readArrayUnquoted(c: Cursor, el: Converter, delim: number, t: TypeDesc): string {
  const s = c.s;
  const begin = c.i;
  let i = begin;
  let escaped = false;
  while (i < s.length) {
    const ch = s.charCodeAt(i);
    if (ch === delim || ch === 125 /* } */) break;
    if (ch === 92) {
      escaped = true;
      i += 2;
    } else if (ch === 123 || ch === 34) {
      throw decodeError(t, `unexpected character at offset ${i}`);
    } else {
      i++;
    }
  }
  if (i > s.length) throw decodeError(t, 'array ends inside an escape');
  c.i = i;
  let end = i;
  while (end > begin && isSpace(s.charCodeAt(end - 1))) end--;
  if (end === begin) throw decodeError(t, `empty array element at offset ${begin}`);
  let text = s.substring(begin, end);
  if (!escaped) {
    if (end - begin === 4 && text.toUpperCase() === 'NULL') return 'null';
  } else {
    text = text.replace(/\\(.)/gs, '$1');
  }
  return el.json(text);
}

// ---------------------------------------------------------------------------------------------
// Composites: record_out prints '(1,"x y",,"")': an empty unquoted field is NULL, "" is the empty
// string. Inside quotes '""' is a quote and a backslash escapes the next character; a backslash
// also escapes outside quotes. Dropped columns are not printed, matching describe_type's fields.
// Range bounds follow the same quoting (range_out).
// ---------------------------------------------------------------------------------------------

/** Reads one field or bound up to (not past) a terminator; null when it is empty and unquoted. */
function readItem(c: Cursor, stop1: number, stop2: number, t: TypeDesc): string | null {
  const s = c.s;
  let i = c.i;
  let start = i;
  let out = '';
  let quotedOrEscaped = false;
  let inQuotes = false;
  for (;;) {
    if (i >= s.length) throw decodeError(t, inQuotes ? 'unterminated quoted value' : 'value ends too early');
    const ch = s.charCodeAt(i);
    if (inQuotes) {
      if (ch === 34) {
        if (s.charCodeAt(i + 1) === 34) {
          out += s.substring(start, i + 1);
          i += 2;
          start = i;
        } else {
          out += s.substring(start, i);
          inQuotes = false;
          start = ++i;
        }
      } else if (ch === 92) {
        out += s.substring(start, i);
        start = i + 1;
        i += 2;
      } else {
        i++;
      }
    } else if (ch === stop1 || ch === stop2) {
      break;
    } else if (ch === 34) {
      out += s.substring(start, i);
      inQuotes = quotedOrEscaped = true;
      start = ++i;
    } else if (ch === 92) {
      out += s.substring(start, i);
      quotedOrEscaped = true;
      start = i + 1;
      i += 2;
    } else {
      i++;
    }
  }
  c.i = i;
  out += s.substring(start, i);
  return out === '' && !quotedOrEscaped ? null : out;
}

export function compositeConverter(t: TypeDesc, fields: { name: string; type: TypeDesc }[], convert: (field: TypeDesc) => Converter): Converter {
  const keys = fields.map((f, k) => (k === 0 ? '{' : ',') + JSON.stringify(f.name) + ':');
  const convs = fields.map((f) => convert(f.type));
  const toJson = (s: string): string => {
    if (s.charCodeAt(0) !== 40 /* ( */) throw decodeError(t, 'expected "("');
    const c: Cursor = { s, i: 1 };
    let out = '';
    for (let k = 0; k < convs.length; k++) {
      if (k > 0) {
        if (s.charCodeAt(c.i) !== 44) throw decodeError(t, `fewer fields than the ${convs.length} described`);
        c.i++;
      }
      const v = readItem(c, 44, 41, t);
      out += keys[k] + (v === null ? 'null' : convs[k]!.json(v));
    }
    if (s.charCodeAt(c.i) !== 41 || c.i !== s.length - 1) throw decodeError(t, `more fields than the ${convs.length} described`);
    return convs.length === 0 ? '{}' : out + '}';
  };
  return { storage: 'TEXT', decode: toJson, json: toJson };
}

// ---------------------------------------------------------------------------------------------
// Ranges: range_out prints 'empty' or '[lower,upper)' with '[' / ']' inclusive, '(' / ')'
// exclusive, an empty bound unbounded. Multiranges: '{[1,3),[5,7)}'.
// ---------------------------------------------------------------------------------------------

function rangeAt(c: Cursor, sub: Converter, t: TypeDesc): string {
  const s = c.s;
  if (s.startsWith('empty', c.i)) {
    c.i += 5;
    return '"empty"';
  }
  const open = s.charCodeAt(c.i);
  if (open !== 91 && open !== 40) throw decodeError(t, `expected "[" or "(" at offset ${c.i}`);
  c.i++;
  const lower = readItem(c, 44, 44, t);
  c.i++; // the ','
  const upper = readItem(c, 93, 41, t);
  const close = s.charCodeAt(c.i++);
  return (
    '{"lower":' + (lower === null ? 'null' : sub.json(lower)) +
    ',"upper":' + (upper === null ? 'null' : sub.json(upper)) +
    ',"lower_inc":' + (open === 91) + ',"upper_inc":' + (close === 93) + '}'
  );
}

export function rangeConverter(t: TypeDesc, sub: Converter): Converter {
  const toJson = (s: string): string => {
    const c: Cursor = { s, i: 0 };
    const out = rangeAt(c, sub, t);
    if (c.i !== s.length) throw decodeError(t, `unexpected text after the range at offset ${c.i}`);
    return out;
  };
  return { storage: 'TEXT', decode: toJson, json: toJson };
}

export function multirangeConverter(t: TypeDesc, sub: Converter): Converter {
  const toJson = (s: string): string => {
    const c: Cursor = { s, i: 0 };
    skipSpace(c);
    if (s.charCodeAt(c.i) !== 123) throw decodeError(t, 'expected "{"');
    c.i++;
    skipSpace(c);
    let out = '[';
    if (s.charCodeAt(c.i) === 125) {
      c.i++;
    } else {
      for (;;) {
        skipSpace(c);
        out += rangeAt(c, sub, t);
        skipSpace(c);
        const sep = s.charCodeAt(c.i++);
        if (sep === 125) break;
        if (sep !== 44) throw decodeError(t, `expected "," or "}" at offset ${c.i - 1}`);
        out += ',';
      }
    }
    skipSpace(c);
    if (c.i !== s.length) throw decodeError(t, `unexpected text after the multirange at offset ${c.i}`);
    return out + ']';
  };
  return { storage: 'TEXT', decode: toJson, json: toJson };
}
