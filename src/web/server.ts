// `pgfollow web`: a page for every follow of a control database, served by node:http alone.
// Routes: the page and its files; /api/* (JSON: status, a follow's SQLite tables and rows, the
// stream's recent transactions; the console and step mode when enabled); /events, the live
// channel (Server-Sent Events). Every request needs the token (auth.ts); every answer carries the
// security headers (http.ts); every value reaches the page as JSON data that it renders as text.

import http from 'node:http';
import type net from 'node:net';
import { WebToken, sameOriginJson } from './auth.js';
import { assetsDir, parseListen, readJson, securityHeaders, sendAsset, sendJson, sendText } from './http.js';
import { StatusWatcher } from './status.js';
import { ChangeStream } from './stream.js';
import { listTables, readRows, resolveSqlite } from './browse.js';
import { openEvents } from './events.js';
import type { SqlConsole } from './console.js';
import type { StepGate } from './step.js';
import { describeError } from '../errors.js';

export interface WebOptions {
  /** HOST:PORT; default 127.0.0.1:8321 (port 0: any free one). */
  listen?: string;
  /** The control database (pgfollow.follow_status). */
  control: string;
  /** The database whose change stream the page shows; default the control database. */
  upstream?: string;
  /** The workers' --data-dir, where relative sqlite paths live; default the current directory. */
  dataDir?: string;
  /** A SQL console on the page (the demo's, or --console); default none. */
  console?: SqlConsole;
  /** Step mode (the demo's). */
  step?: StepGate;
  /** How often the control table is read, ms. Default 1000. */
  statusEveryMs?: number;
}

export interface WebServer {
  /** The page's address with its token: the one thing to hand to whoever may look. */
  url: string;
  token: string;
  port: number;
  status: StatusWatcher;
  stream: ChangeStream;
  close(): Promise<void>;
}

export async function startWeb(opts: WebOptions): Promise<WebServer> {
  const { host, port } = parseListen(opts.listen);
  const dir = assetsDir();
  const token = new WebToken();
  const status = new StatusWatcher(opts.control, opts.statusEveryMs);
  const stream = new ChangeStream(opts.upstream ?? opts.control, (lsn) => opts.console?.statementFor(lsn));
  const fileOf = (id: number) => {
    const p = status.sqlitePath(id);
    return p === null ? null : resolveSqlite(p, opts.dataDir);
  };
  const ctx = { status, stream, step: opts.step, fileOf, stepState };
  let actualPort = port;

  const server = http.createServer((req, res) => {
    securityHeaders(res);
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: describeError(e) });
      else res.end();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://page.invalid');
    const auth = token.fromRequest(req, url, actualPort);
    if (!auth.ok) return sendText(res, 403, '403 forbidden: open the page with the URL pgfollow printed (it carries the token)');
    if (auth.inQuery) {
      // The token moves into a cookie, and out of the address bar and the browser's history.
      res.setHeader('Set-Cookie', token.setCookie(actualPort));
      if (req.method === 'GET' && url.pathname === '/') {
        url.searchParams.delete('token');
        res.writeHead(303, { Location: `/${url.search}` });
        return void res.end();
      }
    }
    const p = url.pathname;
    if (req.method === 'GET') {
      if (p === '/') return void sendAsset(res, dir, 'index.html');
      if (p.startsWith('/assets/')) {
        if (sendAsset(res, dir, p.slice('/assets/'.length))) return;
        return sendText(res, 404, 'not found');
      }
      if (p === '/events') return openEvents(req, res, url, ctx);
      if (p === '/api/status') return sendJson(res, 200, { ...status.last, stream: stream.status, console: Boolean(opts.console), step: stepState() });
      if (p === '/api/step') return sendJson(res, 200, stepState());
      if (p === '/api/stream') return sendJson(res, 200, { stream: stream.status, transactions: stream.recent });
      const m = /^\/api\/follows\/(\d+)\/(tables|rows)$/.exec(p);
      if (m) {
        const file = fileOf(Number(m[1]));
        if (!file) return sendJson(res, 404, { error: `no follow ${m[1]}` });
        try {
          if (m[2] === 'tables') return sendJson(res, 200, { file, ...listTables(file) });
          const page = readRows(file, url.searchParams.get('table') ?? '', Number(url.searchParams.get('offset') ?? 0) || 0);
          return page ? sendJson(res, 200, page) : sendJson(res, 404, { error: 'no such table in the file' });
        } catch (e) {
          return sendJson(res, 200, { file, unavailable: describeError(e), tables: [] });
        }
      }
      return sendText(res, 404, 'not found');
    }
    if (req.method === 'POST' && (p === '/api/sql' || p === '/api/step')) {
      if (!sameOriginJson(req)) return sendText(res, 403, '403 forbidden: JSON from this page only');
      const body = (await readJson(req).catch(() => null)) as Record<string, unknown> | null;
      if (p === '/api/sql') {
        if (!opts.console) return sendJson(res, 404, { error: 'no console here (pgfollow web --console, or the demo)' });
        if (typeof body?.sql !== 'string' || !body.sql.trim()) return sendJson(res, 400, { error: 'a statement, please' });
        return sendJson(res, 200, await opts.console.run(body.sql));
      }
      if (!opts.step) return sendJson(res, 404, { error: 'step mode is the demo\'s' });
      const action = body?.action;
      if (action === 'on' || action === 'off') opts.step.setStepping(action === 'on');
      else if (action === 'next') opts.step.release();
      else return sendJson(res, 400, { error: 'action is on, off or next' });
      return sendJson(res, 200, stepState());
    }
    return sendText(res, 405, 'method not allowed');
  }

  function stepState() {
    const s = opts.step;
    if (!s) return null;
    return { version: s.version, stepping: s.stepping, held: s.held ? { ...s.held, statement: opts.console?.statementFor(s.held.lsn) } : null };
  }

  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  actualPort = (server.address() as net.AddressInfo).port;
  status.start();
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shownHost}:${actualPort}/?token=${token.value}`, token: token.value, port: actualPort, status, stream,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await status.close();
      await stream.end();
    },
  };
}
