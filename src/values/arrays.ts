// Arrays as serve reads them: one-dimensional array literals of an entry with an `array` OID (the
// input of parameters and literals), and a stored array (the codec's JSON, sqlite/nested-values.ts)
// printed back as array_out writes it. Elements go through their entry.

import { Forward, ServeError } from './errors.js';
import type { InputValue, TypeEntry } from './entry.js';

/** A one-dimensional Postgres array literal ('{1,2,NULL}', '{"a b",c}') → its elements. */
export function parseArrayText(s: string): (string | null)[] {
  const t = s.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) throw new ServeError('22P02', `malformed array literal: "${s}"`);
  const body = t.slice(1, -1);
  const out: (string | null)[] = [];
  if (body.trim() === '') return out;
  let i = 0;
  while (i <= body.length) {
    while (/\s/.test(body[i] ?? '')) i++;
    if (body[i] === '{') throw new Forward('multi-dimensional array parameter');
    if (body[i] === '"') {
      let v = '';
      i++;
      while (i < body.length && body[i] !== '"') { if (body[i] === '\\') i++; v += body[i++] ?? ''; }
      if (body[i] !== '"') throw new ServeError('22P02', `malformed array literal: "${s}"`);
      i++;
      while (/\s/.test(body[i] ?? '')) i++;
      out.push(v);
    } else {
      let v = '';
      while (i < body.length && body[i] !== ',') { if (body[i] === '\\' || body[i] === '"' || body[i] === '{' || body[i] === '}') throw new Forward('array literal form'); v += body[i++]; }
      v = v.trim();
      if (v === '') throw new ServeError('22P02', `malformed array literal: "${s}"`);
      out.push(/^null$/i.test(v) ? null : v);
    }
    if (i >= body.length) break;
    if (body[i] !== ',') throw new ServeError('22P02', `malformed array literal: "${s}"`);
    i++;
  }
  return out;
}

/** An array literal of `elem`'s array type → the JSON text the mirror stores, each element through elem's input. */
export function arrayInput(s: string, elem: TypeEntry, timeZone: string | undefined): string {
  const input = elem.input ?? (() => { throw new Forward('parameter type not translated'); });
  const items: InputValue[] = parseArrayText(s).map((e) => (e === null ? null : input(e, timeZone)));
  return '[' + items.map((v) => (v === null ? 'null' : typeof v === 'string' ? JSON.stringify(v) : String(v))).join(',') + ']';
}

function arrayElement(v: unknown, elem: TypeEntry): string {
  if (v === null) return 'NULL';
  if (elem.family === 'bool') return v ? 't' : 'f';
  if (typeof v !== 'string') return String(v);
  if (v === '' || /^null$/i.test(v) || /[{}",\\ \t\n\r\v\f]/.test(v)) return '"' + v.replace(/[\\"]/g, '\\$&') + '"';
  return v;
}

/** A stored array of `elem` (JSON, nested for several dimensions) → array_out's text. */
export function renderArray(json: string, elem: TypeEntry): string {
  // Integers stay as their digits (JSON.parse would round int8 beyond 2^53).
  const parsed: unknown = JSON.parse(elem.family === 'int' ? json.replace(/-?\d+/g, '"$&"') : json);
  const walk = (a: unknown): string => (Array.isArray(a) ? '{' + a.map(walk).join(',') + '}' : arrayElement(a, elem));
  return walk(parsed);
}
