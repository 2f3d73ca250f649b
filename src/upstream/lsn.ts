// LSNs are bigint inside pgfollow; the "XXX/YYY" text form exists only at the edges
// (Postgres queries, the replication protocol library, status output).

export type Lsn = bigint;

export function parseLsn(text: string): Lsn {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`invalid LSN "${text}"`);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The greatest of some positions, null when none is known. */
export const maxLsn = (...v: (Lsn | null | undefined)[]): Lsn | null =>
  v.reduce<Lsn | null>((m, x) => (x == null ? m : m === null || x > m ? x : m), null);
