// Postgres text input → the SQLite value the mirror stores, for parameters and literals: each
// type's input is its registry entry's (src/values/), an array's its element's. A form pgfollow
// does not parse exactly raises Forward; invalid input raises Postgres's SQLSTATE (22P02, 22003)
// with Postgres's message.

import { Forward } from '../errors.js';
import { arrayInput } from '../../values/arrays.js';
import { elementEntry, entryOf } from '../../values/registry.js';
import type { PgType } from './types.js';

/** Whether inputValue() reads values of this type (else parameters of it are forwarded). */
export function readsInput(t: PgType): boolean {
  return (entryOf(t.oid) ?? elementEntry(t.oid))?.input !== undefined;
}

/** Postgres text for a value of type `t` → the SQLite value the mirror would store. */
export function inputValue(s: string, t: PgType, timeZone?: string): null | number | bigint | string {
  const e = entryOf(t.oid);
  if (e?.input) return e.input(s, timeZone);
  const elem = e ? undefined : elementEntry(t.oid);
  if (elem) return arrayInput(s, elem, timeZone);
  throw new Forward('parameter type not translated');
}

/** A SQLite literal for a stored value. */
export function sqlLiteral(v: null | number | bigint | string): string {
  if (v === null) return 'NULL';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (v === Infinity) return '9e999';
    if (v === -Infinity) return '-9e999';
    return Number.isInteger(v) ? v.toFixed(1) : String(v);
  }
  return "'" + v.replace(/'/g, "''") + "'";
}
