// The extended query protocol answered locally: a batch of Parse/Bind/Describe/Execute/Close up to
// Sync (or Flush) is answered from SQLite as a whole, or forwarded as a whole; never half, so the
// client's responses stay in order. Every step is judged before anything runs: a step that turns
// out not to be local (a parameter the translator cannot bind exactly, a role without SELECT, a
// binary result format) forwards the whole batch instead. Then the batch runs: Executes stream
// their rows from a reader thread (local/answer.ts); the output is held until it grows past a
// limit, so a read that turns out not to be local (or runs past pgfollow.local_timeout) before
// anything was written still forwards the whole batch. An Execute that fails while running skips
// to Sync, as upstream (and the statements it would have prepared or closed stay as they were).
// Message semantics as in https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY

import * as wire from './wire.js';
import { Forward } from '../errors.js';
import { LocalFailure, Output, RowSource, bind, errorOf, precheck, rowDescription, showDescription, streamRows, type Portal, type Statement } from '../local/answer.js';
import { parseCommand } from './policy.js';
import type { LocalSession } from './local-session.js';

export type BatchResult = { done: true } | { forward: string };

/** What the batch does, in order, once every step is known to be local. */
type Step =
  | { out: Buffer }
  | { stmt: string; value: Statement | null }
  | { exec: Portal; maxRows: number }
  | { sync: true; out: Buffer };

export async function runBatch(s: LocalSession, frames: wire.Frame[]): Promise<BatchResult> {
  // Parse/Close of this batch, applied to the session's statements only if it is answered locally.
  const changed = new Map<string, Statement | null>();
  const stmts = {
    get: (name: string) => (changed.has(name) ? changed.get(name) ?? undefined : s.stmts.get(name)),
    has: (name: string) => (changed.has(name) ? changed.get(name) !== null : s.stmts.has(name)),
    set: (name: string, st: Statement) => { changed.set(name, st); },
    delete: (name: string) => { changed.set(name, null); },
  };
  const portals = new Map<string, Portal>();
  const steps: Step[] = [];
  const out = { push: (...b: Buffer[]) => { for (const x of b) steps.push({ out: x }); } };
  let gateChecked = false;
  let failed = s.skipToSync;
  let executed = 0;
  const gate = async () => {
    if (gateChecked) return;
    const reason = await s.gate.check();
    if (reason) throw new Forward(reason);
    gateChecked = true;
  };
  try {
    await s.replies.waitIdle();
    for (const f of frames) {
      const t = String.fromCharCode(f.type);
      if (failed && t !== 'S') continue;
      try {
        switch (t) {
          case 'P': {
            const m = wire.readParse(f.body);
            const st: Statement = { name: m.name, sql: m.sql, types: m.types, upstream: false, command: parseCommand(m.sql) };
            if (!st.command) {
              await gate();
              await s.gate.translationFor(st);
            }
            // Postgres parses and analyzes first: a statement that is not local (a syntax error
            // among them) has been forwarded above, whatever its name.
            if (m.name !== '' && stmts.has(m.name)) throw new LocalError('42P05', `prepared statement "${m.name}" already exists`);
            stmts.set(m.name, st);
            steps.push({ stmt: m.name, value: st });
            out.push(wire.parseComplete());
            break;
          }
          case 'B': {
            const m = wire.readBind(f.body);
            const st = stmts.get(m.statement);
            if (!st) throw new Forward('statement unknown to the proxy');
            if (st.command) {
              portals.set(m.portal, { command: st.command, values: [], formats: [], source: null });
              out.push(wire.bindComplete());
              break;
            }
            await gate();
            const tr = await s.gate.translationFor(st);
            await s.gate.checkExecutable(tr, m.paramFormats, m.resultFormats);
            if (m.params.length !== tr.paramTypes.length) throw new Forward('parameter count differs (the upstream reports it)');
            const values = bind(tr, m.params.map((p) => (p === null ? null : p.toString('utf8'))), s.settings);
            precheck(s.ctx.replica, tr, values);
            portals.set(m.portal, { translation: tr, values, formats: m.resultFormats, source: null });
            out.push(wire.bindComplete());
            break;
          }
          case 'D': {
            const m = wire.readDescribe(f.body);
            if (m.kind === 'S') {
              const st = stmts.get(m.name);
              if (!st) throw new Forward('statement unknown to the proxy');
              if (st.command) out.push(wire.parameterDescription([]), st.command.kind === 'show' ? showDescription(st.command.name) : wire.noData());
              else {
                await gate();
                const tr = await s.gate.translationFor(st);
                out.push(wire.parameterDescription(tr.paramTypes), rowDescription(tr));
              }
            } else {
              const p = portals.get(m.name);
              if (!p) throw new Forward('portal unknown to the proxy');
              if (p.command) out.push(p.command.kind === 'show' ? showDescription(p.command.name) : wire.noData());
              else out.push(rowDescription(p.translation!, p.formats));
            }
            break;
          }
          case 'E': {
            const m = wire.readExecute(f.body);
            const p = portals.get(m.portal);
            if (!p) throw new Forward('portal unknown to the proxy');
            if (p.command) {
              out.push(...s.commands.run(p.command, false));
              break;
            }
            steps.push({ exec: p, maxRows: m.maxRows });
            executed++;
            break;
          }
          case 'C': {
            const m = wire.readClose(f.body);
            if (m.kind === 'S') {
              if (stmts.get(m.name)?.upstream) throw new Forward('closes a statement prepared upstream');
              stmts.delete(m.name);
              steps.push({ stmt: m.name, value: null });
            } else portals.delete(m.name);
            out.push(wire.closeComplete());
            break;
          }
          case 'S':
            steps.push({ sync: true, out: wire.readyForQuery(s.replies.status) });
            failed = false;
            break;
          case 'H':
            break;
        }
      } catch (e) {
        if (e instanceof Forward || e instanceof wire.ProtocolError) throw e;
        if (e instanceof Error && !(e instanceof LocalError) && !('sqlState' in e)) throw e;
        out.push(wire.errorResponse(errorOf(e)));
        failed = true;
      }
    }
  } catch (e) {
    if (e instanceof Forward) return { forward: e.message };
    throw e;
  }
  return run(s, steps, executed, failed);
}

/** Runs a batch judged local; forwards it whole if its first read is not local after all. */
async function run(s: LocalSession, steps: Step[], executed: number, judgedFailed: boolean): Promise<BatchResult> {
  const out = new Output(s.sink);
  const undo = new Map<string, Statement | undefined>();
  const sources: RowSource[] = [];
  let failed = s.skipToSync;
  const env = s.localEnv();
  try {
    for (const step of steps) {
      if ('sync' in step) {
        out.push(step.out);
        failed = false;
        continue;
      }
      if (failed) continue;
      if ('out' in step) out.push(step.out);
      else if ('stmt' in step) {
        if (!undo.has(step.stmt)) undo.set(step.stmt, s.stmts.get(step.stmt));
        if (step.value) s.stmts.set(step.stmt, step.value);
        else s.stmts.delete(step.stmt);
      } else {
        const p = step.exec;
        if (p.command) continue;
        if (!p.source) sources.push(p.source = new RowSource(p.translation!, p.values, s.settings, p.formats));
        try {
          await streamRows(p.source, env, out, step.maxRows);
        } catch (e) {
          if (e instanceof Forward && out.flushed) {
            out.push(wire.errorResponse({ code: 'XX000', message: `pgfollow serve: the local read cannot go on (${e.message}) after some of its rows were sent; SET pgfollow.read = upstream to read it from the upstream` }));
          } else if (e instanceof LocalFailure) out.push(wire.errorResponse(e.fields));
          else throw e;
          failed = true;
        }
      }
    }
  } catch (e) {
    if (e instanceof Forward && !out.flushed) {
      out.discard();
      for (const [k, v] of undo) { if (v) s.stmts.set(k, v); else s.stmts.delete(k); }
      return { forward: e.message };
    }
    throw e;
  } finally {
    // Portals live until the end of their batch (Sync or Flush).
    for (const src of sources) src.close();
    s.localDone();
  }
  out.flush();
  s.skipToSync = judgedFailed || failed;
  for (let i = 0; i < executed; i++) s.commands.routed(null);
  return { done: true };
}

class LocalError extends Error {
  constructor(readonly sqlState: string, message: string) { super(message); }
}
