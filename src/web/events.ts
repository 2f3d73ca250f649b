// The live channel: Server-Sent Events on GET /events. A page gets the status of every follow
// (each time the control table is read), the change stream's transactions (with ids, so a page
// that reconnects with Last-Event-ID gets what it missed), step mode's held transaction, and, for
// the follow it shows (?follow=ID), the position its SQLite file has applied, so it reloads the
// rows it shows. The browser's EventSource reconnects by itself (retry: 2000 ms).

import type http from 'node:http';
import type { StatusWatcher, Snapshot } from './status.js';
import type { ChangeStream, StreamState } from './stream.js';
import type { StepGate, HeldTransaction } from './step.js';
import type { ShownTransaction } from './values.js';
import { fileLsn } from './browse.js';

export interface EventsContext {
  status: StatusWatcher;
  stream: ChangeStream;
  step?: StepGate;
  fileOf(id: number): string | null;
  stepState(): unknown;
}

/** How often the shown follow's file is asked for its applied position. */
const FILE_EVERY_MS = 200;
/** A comment line this often keeps proxies and the browser from timing the channel out. */
const PING_MS = 15_000;

export function openEvents(req: http.IncomingMessage, res: http.ServerResponse, url: URL, ctx: EventsContext): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
  const send = (event: string, data: unknown, id?: number) => {
    res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  res.write('retry: 2000\n\n');
  send('status', ctx.status.last);
  send('stream-state', ctx.stream.status);
  if (ctx.step) send('step', ctx.stepState());
  const lastId = Number(req.headers['last-event-id'] ?? url.searchParams.get('since') ?? 0) || 0;
  for (const t of ctx.stream.since(lastId)) send('transaction', t, t.seq);

  const onSnapshot = (s: Snapshot) => send('status', s);
  const onTransaction = (t: ShownTransaction) => send('transaction', t, t.seq);
  const onStreamState = (s: StreamState) => send('stream-state', s);
  const onStep = () => send('step', ctx.stepState());
  ctx.status.on('snapshot', onSnapshot);
  ctx.stream.on('transaction', onTransaction);
  ctx.stream.on('state', onStreamState);
  ctx.step?.on('held', onStep as (t: HeldTransaction) => void);
  ctx.step?.on('released', onStep);
  const release = ctx.stream.watch();

  const follow = Number(url.searchParams.get('follow'));
  let applied: string | null = null;
  const fileTimer = Number.isInteger(follow) && follow > 0 ? setInterval(() => {
    const file = ctx.fileOf(follow);
    const lsn = file ? fileLsn(file) : null;
    if (lsn !== applied) { applied = lsn; send('applied', { follow, lsn }); }
  }, FILE_EVERY_MS) : null;
  const ping = setInterval(() => res.write(': ping\n\n'), PING_MS);

  req.on('close', () => {
    ctx.status.off('snapshot', onSnapshot);
    ctx.stream.off('transaction', onTransaction);
    ctx.stream.off('state', onStreamState);
    ctx.step?.off('held', onStep as (t: HeldTransaction) => void);
    ctx.step?.off('released', onStep);
    if (fileTimer) clearInterval(fileTimer);
    clearInterval(ping);
    release();
  });
}
