// A simple-protocol Query: a pgfollow.* command is answered by the proxy itself, a single SELECT
// from SQLite if the gate allows it (gate.ts), anything else by the upstream. Rows stream as in
// batch.ts; once some were sent, a read that cannot go on ends in an error.

import * as wire from './wire.js';
import { Forward } from '../errors.js';
import { parse } from '../sql/translate.js';
import { parseCommand } from './policy.js';
import { LocalFailure, Output, RowSource, bind, errorOf, precheck, rowDescription, streamRows, type Statement } from '../local/answer.js';
import type { LocalSession } from './local-session.js';
import type { Replies } from './replies.js';
import type { Identity } from './identity.js';
import type { Gate } from './gate.js';
import { isRead } from './names.js';

/** What a simple query needs of its session besides what answering locally does. */
export interface QuerySession extends LocalSession {
  readonly replies: Pick<Replies, 'status' | 'waitIdle' | 'openExt' | 'upstreamLost' | 'pending'>;
  readonly identity: Pick<Identity, 'dirty'>;
  readonly gate: Pick<Gate, 'check' | 'translationFor' | 'checkExecutable' | 'mayWrite'>;
  /** Writes to the client as it is. */
  reply(b: Buffer): void;
  /** The reply to a request the upstream cannot answer any more (08006). */
  lostReply(withReady: boolean): void;
  /** Writes to the upstream (recording a Query as owed its reply: replies.ts). */
  toUpstream(b: Buffer): void;
}

export async function simpleQuery(s: QuerySession, f: wire.Frame): Promise<void> {
  const sql = wire.readQuery(f.body);
  const cmd = parseCommand(sql);
  if (cmd) {
    await s.replies.waitIdle();
    s.reply(Buffer.concat([...s.commands.run(cmd, true), wire.readyForQuery(s.replies.status)]));
    return;
  }
  const parsed = parse(sql);
  let reason = 'not a single SELECT';
  if (s.replies.openExt) reason = 'an extended-protocol sequence is open upstream (no Sync yet)';
  else if (!('error' in parsed) && parsed.stmts === 1 && parsed.kind === 'select') {
    const st: Statement = { name: '', sql, types: [], upstream: false };
    try {
      const gate = await s.gate.check();
      if (gate) throw new Forward(gate);
      const t = await s.gate.translationFor(st, parsed);
      await s.gate.checkExecutable(t, [], []);
      const out = new Output(s.sink);
      out.push(rowDescription(t));
      const values = bind(t, [], s.settings);
      precheck(s.ctx.replica, t, values);
      const src = new RowSource(t, values, s.settings);
      try {
        await streamRows(src, s.localEnv(), out);
      } catch (e) {
        if (e instanceof Forward && !out.flushed) throw e;
        out.push(wire.errorResponse(e instanceof LocalFailure ? e.fields
          : e instanceof Forward ? { code: 'XX000', message: `pgfollow serve: the local read cannot go on (${e.message}) after some of its rows were sent; SET pgfollow.read = upstream to read it from the upstream` }
          : errorOf(e)));
      } finally {
        src.close();
        s.localDone();
      }
      s.stmts.delete(''); // a simple query ends the unnamed statement, as upstream
      s.commands.routed(null);
      out.push(wire.readyForQuery(s.replies.status));
      out.flush();
      return;
    } catch (e) {
      if (!(e instanceof Forward)) throw e;
      reason = e.message;
    }
  } else if ('error' in parsed) reason = 'parse error (the upstream reports it)';
  if (s.replies.upstreamLost) return s.lostReply(true);
  s.stmts.delete('');
  s.commands.routed(reason);
  s.identity.dirty();
  if (!isRead(parsed)) s.gate.mayWrite = true;
  s.replies.pending++;
  s.toUpstream(f.raw);
}
