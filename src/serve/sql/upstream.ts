// What the upstream itself decides about a translation: its database's collation and ctype (text
// order and case mapping) and its server version (a few output column names). One UpstreamFacts
// per server: two `serve()` in one process, over two upstreams, each translate under their own.

export interface UpstreamFacts {
  /** pg_database.datcollate; undefined until known (then text order is forwarded). */
  collate?: string;
  /** pg_database.datctype; undefined until known (then case mapping is forwarded). */
  ctype?: string;
  /** server_version_num; 180000 until known. */
  versionNum?: number;
}

const BYTEWISE = /^(C|POSIX|C\.UTF-?8)$/i;

/**
 * The upstream's rules as one translation sees them, and what the statement asks of them: whether
 * it compares, orders, groups or case-maps text (`semantics`), and whether it reads a text column
 * whose collation is not known to be bytewise (`nonBinary`); both together forward the statement.
 * Text order is SQLite's BINARY order only under C/POSIX (and C.UTF-8, which compares code
 * points); lower(), upper() and ILIKE fold ASCII letters only (non-ASCII text is forwarded) under
 * a C ctype.
 */
export class TextRules {
  private readonly orderIsBinary: boolean;
  private readonly caseIsAscii: boolean;
  private readonly versionNum: number;
  semantics = false;
  nonBinary = false;

  constructor(up: UpstreamFacts = {}) {
    this.orderIsBinary = up.collate !== undefined && BYTEWISE.test(up.collate);
    const ctype = up.ctype ?? up.collate;
    this.caseIsAscii = ctype !== undefined && BYTEWISE.test(ctype);
    this.versionNum = up.versionNum ?? 180000;
  }

  /** Text order is exact here (notes that the statement depends on it). */
  orderExact(): boolean { this.semantics = true; return this.orderIsBinary; }
  /** lower()/upper()/ILIKE fold as SQLite does here (notes the dependence). */
  asciiCaseMapping(): boolean { this.semantics = true; return this.caseIsAscii; }
  /** The statement compares text (equality included): a non-bytewise column then forwards it. */
  noteSemantics(): void { this.semantics = true; }

  /**
   * Whether a column's collation (MirrorColumn.collation: 'default', a collation name, or
   * undefined when the proxy did not say) orders, compares and case-maps as bytes.
   */
  binaryCollation(collation: string | undefined): boolean {
    if (collation === undefined) return false;
    if (collation === 'default') return this.orderIsBinary && this.caseIsAscii;
    return /^(C|POSIX|ucs_basic)$/.test(collation);
  }

  /** Before 15 a boolean literal's column is named `bool` (it was a cast of 't'), `?column?` since. */
  boolLiteralName(): string { return this.versionNum < 150000 ? 'bool' : '?column?'; }
}
