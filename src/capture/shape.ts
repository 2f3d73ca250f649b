// Shape checks for the capture's JSON: small composable checks of parsed values (strings,
// integers, arrays, objects by field), each typed by the TypeScript type a passing value has, so
// that an object's check must name every field of its interface with a check of that field's type.
//
// A check allocates nothing while a value has its shape (one typeof per value); only a fault builds
// its path ("tables[0].columns[2].typoid") on the way back up. Fields a check does not name are
// let through: a later capture may add some.

/** What is wrong with a value, and where: `path` from the value checked on, '' for the value itself. */
export class Fault {
  constructor(public path: string, readonly what: string) {}

  /** The fault as seen from one level up: under field `key` or at index `key`. */
  under(key: string | number): Fault {
    const step = typeof key === 'number' ? `[${key}]` : key;
    this.path = this.path === '' ? step : this.path.charCodeAt(0) === 91 /* [ */ ? step + this.path : `${step}.${this.path}`;
    return this;
  }
}

/**
 * A check of one value: null when the value has the shape, else the fault. `T` is the type of a
 * value that passes (a phantom: it only makes checks of different types incompatible).
 */
export interface Shape<T> {
  (v: unknown): Fault | null;
  readonly type?: () => T;
}

function kind(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  const t = typeof v;
  return t === 'object' ? 'an object' : t === 'number' && !Number.isInteger(v) ? 'a fractional number' : `a ${t}`;
}

function expected(what: string, v: unknown): Fault {
  const got = kind(v);
  return new Fault('', got === 'missing' ? 'is missing' : `is ${got}, not ${what}`);
}

function shape<T>(check: (v: unknown) => Fault | null): Shape<T> {
  return check as Shape<T>;
}

export const str: Shape<string> = shape((v) => (typeof v === 'string' ? null : expected('a string', v)));
export const int: Shape<number> = shape((v) => (typeof v === 'number' && Number.isInteger(v) ? null : expected('an integer', v)));
export const bool: Shape<boolean> = shape((v) => (typeof v === 'boolean' ? null : expected('a boolean', v)));

/** Exactly the string `value` (an op's name). */
export function literal<const L extends string>(value: L): Shape<L> {
  return shape((v) => (v === value ? null : typeof v === 'string' ? new Fault('', `is ${JSON.stringify(v.slice(0, 20))}, not ${JSON.stringify(value)}`) : expected(JSON.stringify(value), v)));
}

export function nullable<T>(s: Shape<T>): Shape<T | null> {
  return shape((v) => (v === null ? null : s(v)));
}

/** A field that may be absent (JSON has no undefined: absent is the only way to get it). */
export function optional<T>(s: Shape<T>): Shape<T | undefined> {
  return shape((v) => (v === undefined ? null : s(v)));
}

export function arrayOf<T>(s: Shape<T>): Shape<T[]> {
  return shape((v) => {
    if (!Array.isArray(v)) return expected('an array', v);
    for (let i = 0; i < v.length; i++) {
      const f = s(v[i]);
      if (f) return f.under(i);
    }
    return null;
  });
}

/** A check for each field of `T`, optional ones included, of that field's type. */
export type Fields<T> = { [K in keyof Required<T>]: Shape<T[K]> };

/** An object with these fields. `T` is given, not inferred: the interface the JSON is read as. */
export function object<T>(fields: Fields<T>): Shape<T> {
  const keys = Object.keys(fields);
  const checks = keys.map((k) => (fields as Record<string, Shape<unknown>>)[k]!);
  return shape((v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return expected('an object', v);
    const o = v as Record<string, unknown>;
    for (let i = 0; i < keys.length; i++) {
      const f = checks[i]!(o[keys[i]!]);
      if (f) return f.under(keys[i]!);
    }
    return null;
  });
}

/** A check defined later (a recursive type's, which refers to itself). */
export function later<T>(get: () => Shape<T>): Shape<T> {
  return shape((v) => get()(v));
}
