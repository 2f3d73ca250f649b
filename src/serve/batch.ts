// The extended query protocol answered locally: a batch of Parse/Bind/Describe/Execute/Close up to
// Sync (or Flush) is answered from SQLite as a whole, or forwarded as a whole; never half, so the
// client's responses stay in order. Everything is computed before anything is sent: a step that
// turns out not to be local (a parameter the translator cannot bind exactly, a role without
// SELECT, a binary result format) forwards the whole batch instead.
// Message semantics as in https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY

import * as wire from './wire.js';
import { ForwardInstead, bind, errorOf, execute, rowDescription, showDescription, type Portal, type Statement } from './local.js';
import { parseCommand } from './policy.js';
import type { Session } from './session.js';

export type BatchResult = { messages: Buffer[] } | { forward: string };

export async function runBatch(s: Session, frames: wire.Frame[]): Promise<BatchResult> {
  // Parse/Close of this batch, applied to the session's statements only if it is answered locally.
  const changed = new Map<string, Statement | null>();
  const stmts = {
    get: (name: string) => (changed.has(name) ? changed.get(name) ?? undefined : s.stmts.get(name)),
    has: (name: string) => (changed.has(name) ? changed.get(name) !== null : s.stmts.has(name)),
    set: (name: string, st: Statement) => { changed.set(name, st); },
    delete: (name: string) => { changed.set(name, null); },
  };
  const portals = new Map<string, Portal>();
  const out: Buffer[] = [];
  let gateChecked = false;
  let failed = s.skipToSync;
  let executed = 0;
  const gate = async () => {
    if (gateChecked) return;
    const reason = await s.readGate();
    if (reason) throw new ForwardInstead(reason);
    gateChecked = true;
  };
  try {
    await s.waitIdle();
    for (const f of frames) {
      const t = String.fromCharCode(f.type);
      if (failed && t !== 'S') continue;
      try {
        switch (t) {
          case 'P': {
            const m = wire.readParse(f.body);
            if (m.name !== '' && stmts.has(m.name)) throw new LocalError('42P05', `prepared statement "${m.name}" already exists`);
            const st: Statement = { name: m.name, sql: m.sql, types: m.types, upstream: false, command: parseCommand(m.sql) };
            if (!st.command) {
              await gate();
              await s.translationFor(st);
            }
            stmts.set(m.name, st);
            out.push(wire.parseComplete());
            break;
          }
          case 'B': {
            const m = wire.readBind(f.body);
            const st = stmts.get(m.statement);
            if (!st) throw new ForwardInstead('statement unknown to the proxy');
            if (st.command) {
              portals.set(m.portal, { command: st.command, values: [], formats: [], rows: null, pos: 0 });
              out.push(wire.bindComplete());
              break;
            }
            await gate();
            const tr = await s.translationFor(st);
            await s.checkExecutable(tr, m.paramFormats, m.resultFormats);
            if (m.params.length !== tr.paramTypes.length) throw new ForwardInstead('parameter count differs (the upstream reports it)');
            const values = bind(tr, m.params.map((p) => (p === null ? null : p.toString('utf8'))), s.settings);
            portals.set(m.portal, { translation: tr, values, formats: m.resultFormats, rows: null, pos: 0 });
            out.push(wire.bindComplete());
            break;
          }
          case 'D': {
            const m = wire.readDescribe(f.body);
            if (m.kind === 'S') {
              const st = stmts.get(m.name);
              if (!st) throw new ForwardInstead('statement unknown to the proxy');
              if (st.command) out.push(wire.parameterDescription([]), st.command.kind === 'show' ? showDescription(st.command.name) : wire.noData());
              else {
                await gate();
                const tr = await s.translationFor(st);
                out.push(wire.parameterDescription(tr.paramTypes), rowDescription(tr));
              }
            } else {
              const p = portals.get(m.name);
              if (!p) throw new ForwardInstead('portal unknown to the proxy');
              if (p.command) out.push(p.command.kind === 'show' ? showDescription(p.command.name) : wire.noData());
              else out.push(rowDescription(p.translation!, p.formats));
            }
            break;
          }
          case 'E': {
            const m = wire.readExecute(f.body);
            const p = portals.get(m.portal);
            if (!p) throw new ForwardInstead('portal unknown to the proxy');
            if (p.command) {
              out.push(...s.runCommand(p.command, false));
              break;
            }
            p.rows ??= execute(s.ctx.replica, p.translation!, p.values, s.settings, p.formats);
            const end = m.maxRows > 0 ? Math.min(p.rows.length, p.pos + m.maxRows) : p.rows.length;
            for (; p.pos < end; p.pos++) out.push(wire.dataRow(p.rows[p.pos]));
            out.push(p.pos < p.rows.length ? wire.portalSuspended() : wire.commandComplete(`SELECT ${p.rows.length}`));
            executed++;
            break;
          }
          case 'C': {
            const m = wire.readClose(f.body);
            if (m.kind === 'S') {
              if (stmts.get(m.name)?.upstream) throw new ForwardInstead('closes a statement prepared upstream');
              stmts.delete(m.name);
            } else portals.delete(m.name);
            out.push(wire.closeComplete());
            break;
          }
          case 'S':
            out.push(wire.readyForQuery(s.status));
            failed = false;
            break;
          case 'H':
            break;
        }
      } catch (e) {
        if (e instanceof ForwardInstead || e instanceof wire.ProtocolError) throw e;
        if (e instanceof Error && !(e instanceof LocalError) && !('sqlState' in e)) throw e;
        out.push(wire.errorResponse(errorOf(e)));
        failed = true;
      }
    }
  } catch (e) {
    if (e instanceof ForwardInstead) return { forward: e.message };
    throw e;
  }
  // Committed only now that the whole batch is local.
  for (const [k, v] of changed) {
    if (v) s.stmts.set(k, v);
    else s.stmts.delete(k);
  }
  s.skipToSync = failed;
  for (let i = 0; i < executed; i++) s.routed(null);
  return { messages: out };
}

class LocalError extends Error {
  constructor(readonly sqlState: string, message: string) { super(message); }
}
