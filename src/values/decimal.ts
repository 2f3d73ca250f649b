// Exact decimal arithmetic on numeric's text form ('-12.50', 'NaN', 'Infinity'), for comparing,
// sorting and summing numeric values stored as TEXT without going through a double.

export type Dec = { kind: 'num'; v: bigint; scale: number } | { kind: 'nan' } | { kind: 'inf'; neg: boolean };

const NUM = /^\s*([+-]?)(\d+)?(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;

export function parseDec(s: string | number | bigint): Dec | null {
  if (typeof s === 'bigint') return { kind: 'num', v: s, scale: 0 };
  if (typeof s === 'number') { if (!Number.isInteger(s)) return null; return { kind: 'num', v: BigInt(s), scale: 0 }; }
  const t = s.trim().toLowerCase();
  if (t === 'nan') return { kind: 'nan' };
  if (/^[+]?inf(inity)?$/.test(t)) return { kind: 'inf', neg: false };
  if (/^-inf(inity)?$/.test(t)) return { kind: 'inf', neg: true };
  const m = NUM.exec(s);
  if (!m || (m[2] === undefined && !m[3])) return null;
  let digits = (m[2] ?? '') + (m[3] ?? '');
  let scale = (m[3] ?? '').length;
  const e = m[4] ? Number(m[4]) : 0;
  if (Math.abs(e) > 1000) return null;
  scale -= e;
  if (scale < 0) { digits += '0'.repeat(-scale); scale = 0; }
  const v = BigInt(digits || '0');
  return { kind: 'num', v: m[1] === '-' ? -v : v, scale };
}

const scaleUp = (v: bigint, by: number): bigint => v * 10n ** BigInt(by);

export function cmpDec(a: Dec, b: Dec): number {
  const rank = (d: Dec) => (d.kind === 'nan' ? 2 : d.kind === 'inf' ? (d.neg ? -1 : 1) : 0);
  const ra = rank(a), rb = rank(b);
  if (ra !== 0 || rb !== 0) return Math.sign(ra - rb);
  const x = a as Extract<Dec, { kind: 'num' }>, y = b as Extract<Dec, { kind: 'num' }>;
  const s = Math.max(x.scale, y.scale);
  const d = scaleUp(x.v, s - x.scale) - scaleUp(y.v, s - y.scale);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

export function addDec(a: Dec, b: Dec): Dec {
  if (a.kind === 'nan' || b.kind === 'nan') return { kind: 'nan' };
  if (a.kind === 'inf' && b.kind === 'inf') return a.neg === b.neg ? a : { kind: 'nan' };
  if (a.kind === 'inf') return a;
  if (b.kind === 'inf') return b;
  const s = Math.max(a.scale, b.scale);
  return { kind: 'num', v: scaleUp(a.v, s - a.scale) + scaleUp(b.v, s - b.scale), scale: s };
}

export function formatDec(d: Dec): string {
  if (d.kind === 'nan') return 'NaN';
  if (d.kind === 'inf') return d.neg ? '-Infinity' : 'Infinity';
  const neg = d.v < 0n;
  let digits = (neg ? -d.v : d.v).toString();
  if (d.scale > 0) {
    digits = digits.padStart(d.scale + 1, '0');
    digits = digits.slice(0, -d.scale) + '.' + digits.slice(-d.scale);
  }
  return (neg ? '-' : '') + digits;
}

/** A text key whose byte order is numeric order; equal numbers (1.0, 1.00) get equal keys. */
export function decKey(d: Dec): string {
  if (d.kind === 'nan') return '5';
  if (d.kind === 'inf') return d.neg ? '0' : '4';
  if (d.v === 0n) return '2';
  const neg = d.v < 0n;
  const digits = (neg ? -d.v : d.v).toString().replace(/0+$/, '');
  const exp = (neg ? -d.v : d.v).toString().length - d.scale + 50000;
  if (!neg) return '3' + String(exp).padStart(6, '0') + digits;
  return '1' + String(999999 - exp).padStart(6, '0') + digits.replace(/\d/g, (c) => String(9 - Number(c))) + '~';
}

/**
 * avg() as Postgres computes it: numeric_div(sum, count) with select_div_scale()'s result scale
 * (at least 16 significant digits, never fewer fraction digits than the sum has), rounded half
 * away from zero (numeric.c, div_var and round_var).
 */
export function avgDec(sum: Dec, count: bigint): Dec {
  if (sum.kind !== 'num') return sum;
  const abs = sum.v < 0n ? -sum.v : sum.v;
  // The first base-10000 digit of the sum and its weight, as numeric stores it.
  let weight1 = 0, first1 = 0;
  if (abs !== 0n) {
    const digits = abs.toString().padStart(sum.scale + 1, '0');
    const ip = digits.slice(0, digits.length - sum.scale).replace(/^0+/, '');
    const fp = digits.slice(digits.length - sum.scale);
    if (ip.length) {
      weight1 = Math.ceil(ip.length / 4) - 1;
      first1 = Number(ip.slice(0, ip.length % 4 || 4));
    } else {
      const padded = fp.padEnd(Math.ceil(fp.length / 4) * 4, '0');
      for (let k = 0; k * 4 < padded.length; k++) {
        const g = Number(padded.slice(k * 4, k * 4 + 4));
        if (g !== 0) { weight1 = -(k + 1); first1 = g; break; }
      }
    }
  }
  const c = count.toString();
  const weight2 = Math.ceil(c.length / 4) - 1;
  const first2 = Number(c.slice(0, c.length % 4 || 4));
  let qweight = weight1 - weight2;
  if (first1 <= first2) qweight--;
  const rscale = Math.min(Math.max(16 - qweight * 4, sum.scale, 0), 1000);
  const num = abs * 10n ** BigInt(rscale), den = 10n ** BigInt(sum.scale) * count;
  let q = num / den;
  if ((num % den) * 2n >= den) q++;
  return { kind: 'num', v: sum.v < 0n ? -q : q, scale: rscale };
}

/** a * b exactly, with Postgres's result scale (the sum of the scales) and special values. */
export function mulDec(a: Dec, b: Dec): Dec {
  if (a.kind === 'nan' || b.kind === 'nan') return { kind: 'nan' };
  const sign = (d: Dec) => (d.kind === 'inf' ? (d.neg ? -1 : 1) : d.kind === 'num' ? (d.v < 0n ? -1 : d.v > 0n ? 1 : 0) : 0);
  if (a.kind === 'inf' || b.kind === 'inf') {
    const s = sign(a) * sign(b);
    return s === 0 ? { kind: 'nan' } : { kind: 'inf', neg: s < 0 };
  }
  const x = a as Extract<Dec, { kind: 'num' }>, y = b as Extract<Dec, { kind: 'num' }>;
  return { kind: 'num', v: x.v * y.v, scale: x.scale + y.scale };
}

export function negDec(a: Dec): Dec {
  if (a.kind === 'nan') return a;
  if (a.kind === 'inf') return { kind: 'inf', neg: !a.neg };
  return { ...a, v: -a.v };
}

/** round(x, s): half away from zero; a negative s zeroes digits left of the point (scale 0). */
export function roundDec(a: Dec, s: number): Dec {
  if (a.kind !== 'num') return a;
  const target = Math.max(s, 0);
  if (s >= a.scale) return { kind: 'num', v: a.v * 10n ** BigInt(target - a.scale), scale: target };
  const drop = 10n ** BigInt(a.scale - s);
  const abs = a.v < 0n ? -a.v : a.v;
  let q = abs / drop;
  if ((abs % drop) * 2n >= drop) q++;
  let v = a.v < 0n ? -q : q;
  if (s < 0) v *= 10n ** BigInt(-s);
  return { kind: 'num', v, scale: target };
}
