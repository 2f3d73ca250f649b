// May a read be answered locally now, and with which translation. Reads are answered from SQLite
// only when the session is idle outside a transaction block, the file is fresh enough and has this
// session's own writes, the statement translates exactly and the session's role may SELECT
// everything it reads. Held here: what the checks read that only this session knows (its last
// write's position in the WAL, two settings the server reports).

import { Forward } from '../errors.js';
import { parse, route, type Parsed, type RenderSettings, type Translation } from '../sql/translate.js';
import { formatOf, type Statement } from '../local/answer.js';
import type { Lsn } from '../../upstream/lsn.js';
import type { ServeContext } from './context.js';
import type { SessionPolicy } from './policy.js';
import type { Replies } from './replies.js';
import type { Identity } from './identity.js';

export class Gate {
  /** A statement forwarded since the upstream was last idle may have changed table data. */
  mayWrite = false;
  /** client_encoding as the server reports it (ParameterStatus). */
  clientEncoding = 'UTF8';
  /** The parser reads string literals as with standard_conforming_strings = on. */
  standardStrings = true;
  /** The upstream's WAL position once idle after this session's last write, until the file has reached it (null: unknown). */
  private fence: Promise<Lsn | null> | null = null;
  /** A read already waited for `fence` in vain: reads check it without waiting again. */
  private fenceWaited = false;

  constructor(
    private readonly ctx: ServeContext,
    private readonly policy: SessionPolicy,
    private readonly replies: Replies,
    private readonly identity: Identity,
    private readonly settings: RenderSettings,
  ) {}

  /** After ReadyForQuery to a forwarded statement: once idle, this session's writes are at the upstream's current position. */
  readyForQuery(): void {
    if (this.replies.status === 'I' && this.mayWrite) {
      this.mayWrite = false;
      this.fence = this.ctx.watch.currentLsn().catch(() => null);
      this.fenceWaited = false;
    }
  }

  /**
   * Why a read may not be answered locally now, or null if it may: waits until the session is
   * idle, then checks the transaction state, the file, this session's own writes and the lag.
   */
  async check(): Promise<string | null> {
    if (this.policy.read === 'upstream') return 'pgfollow.read is upstream';
    if (this.replies.openExt) return 'an extended-protocol sequence is open upstream (no Sync yet)';
    await this.replies.waitIdle();
    if (this.replies.status !== 'I' && !this.replies.upstreamLost) return 'inside a transaction block';
    if (!this.standardStrings) return 'standard_conforming_strings is off';
    if (this.clientEncoding.toUpperCase() !== 'UTF8') return `client_encoding is ${this.clientEncoding} (local answers are UTF8)`;
    const replica = this.ctx.replica;
    if (!replica.catalog()) return 'the SQLite file is unavailable';
    if (!(await this.ctx.watch.knowCollation())) return 'the upstream\'s collation is not known (upstream unreachable)';
    if (this.policy.read === 'replica') return null;
    if (this.fence) {
      const target = await this.fence;
      if (target === null) return 'the position of this session\'s last write is unknown (upstream unreachable)';
      // Waits once per write; reads after a wait that timed out check without waiting again.
      const deadline = this.fenceWaited ? 0 : Date.now() + this.policy.writeWaitMs;
      while (replica.appliedLsn() < target) {
        if (Date.now() >= deadline) {
          this.fenceWaited = true;
          return `this session's last write is not in the SQLite file yet (pgfollow.write_wait ${this.policy.writeWaitMs} ms)`;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      this.fence = null;
    }
    const lag = this.ctx.watch.staleness(replica.appliedLsn());
    if (lag > this.policy.maxLagMs) return `the SQLite file is ${lag === Infinity ? 'of unknown age' : `${lag} ms behind`} (pgfollow.max_lag ${this.policy.maxLagMs} ms)`;
    return null;
  }

  /** The statement's translation under this session's names, or Forward with the reason. */
  async translationFor(st: Statement, parsed?: Parsed | { error: string }): Promise<Translation> {
    const replica = this.ctx.replica;
    const cat = replica.catalog();
    if (!cat) throw new Forward('the SQLite file is unavailable');
    if (st.translation !== undefined && st.epoch === this.identity.epoch && st.catalogVersion === replica.catalogVersion) {
      if (st.translation) return st.translation;
      throw new Forward(st.reason ?? 'not translatable');
    }
    await this.ctx.catalogInfo(cat);
    const p = parsed ?? parse(st.sql);
    if ('error' in p) throw new Forward('parse error (the upstream reports it)');
    if (p.stmts !== 1 || p.kind !== 'select') throw new Forward('not a single SELECT');
    await this.identity.resolve(p.relations);
    if (!this.identity.searchPathOk) throw new Forward('pg_catalog is not first in search_path');
    if (this.identity.shadowedTypes) throw new Forward('the session has temporary types named like other types');
    let r: ReturnType<typeof route>;
    try {
      r = route(p, (schema, name) => {
        const oid = this.identity.table(schema, name);
        return oid ? cat.tables.get(oid) : undefined;
      }, st.types, this.ctx.upstream);
    } catch (e) {
      // A translator failure is never the client's problem: the upstream answers instead.
      this.ctx.log('warn', 'serve.translator_failed', { error: (e as Error)?.message ?? String(e) });
      throw new Forward('the translator failed on this statement');
    }
    st.epoch = this.identity.epoch;
    st.catalogVersion = replica.catalogVersion;
    st.translation = r.local ? r.translation : null;
    st.reason = r.local ? undefined : r.reason;
    if (!r.local) throw new Forward(r.reason);
    return r.translation;
  }

  /** Checks formats, privileges and settings for running `t` here; Forward if not. */
  async checkExecutable(t: Translation, paramFormats: number[], resultFormats: number[]): Promise<void> {
    if (paramFormats.some((x) => x !== 0)) throw new Forward('binary parameters');
    if (resultFormats.some((x) => x !== 0 && x !== 1) || (resultFormats.length > 1 && resultFormats.length !== t.columns.length)) {
      throw new Forward('result formats the upstream must judge');
    }
    if (t.columns.some((_, i) => formatOf(resultFormats, i) === 1 && !t.binaryColumns[i])) throw new Forward('binary output of a type not rendered in binary locally');
    if (this.identity.roleOid === null || this.identity.sessionAuth === null) throw new Forward('the session\'s role is unknown');
    // Both the current role (probed) and the session user (reported by the server itself) must
    // be allowed to read it: the probe runs in a session the client controls, but whatever it answers, a
    // client never reads locally more than its session user could read upstream after RESET ROLE.
    if (!(await this.ctx.watch.maySelect(this.identity.sessionAuth, t.reads))) throw new Forward(`the session user "${this.identity.sessionAuth}" may not SELECT all it reads here, or a table has row-level security`);
    if (!(await this.ctx.watch.maySelect(this.identity.roleOid, t.reads))) throw new Forward(`the session's role (OID ${this.identity.roleOid}) may not SELECT all it reads here, or a table has row-level security`);
    if (!t.renderable(this.settings)) throw new Forward('the session\'s settings (DateStyle, IntervalStyle or TimeZone) are not rendered locally');
  }
}
