// `pgfollow web` and `pgfollow demo --web`, driven in a real headless Chromium (Debian's
// /usr/bin/chromium through playwright-core): refused without the token, live with it; statements
// run upstream reach the change stream and the SQLite rows on the page; a hostile value is shown as
// text; the demo's console runs statements; step mode lets exactly one transaction through per
// click. Each part ends comparing the followed tables upstream against the SQLite file.

import t from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CLI, cluster, compareAll, database, sqliteCount, startWorker, tempDir, waitFor } from '../support/index.js';
import { connect, userSessionConfig } from '../../src/upstream/session.js';
import { parseListen } from '../../src/web/http.js';
import { WebToken } from '../../src/web/auth.js';
import { showValue } from '../../src/web/values.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = '/tmp/web-shots';
const WAIT = { timeout: 30_000 };

interface Tap { teardown(fn: () => unknown): void }

async function browser(t: Tap): Promise<BrowserContext> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgfollow-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  t.teardown(async () => { await ctx.close().catch(() => {}); fs.rmSync(dir, { recursive: true, force: true }); });
  return ctx;
}

/** A pgfollow command as a real process, with the page's URL once it printed it. */
function run(t: Tap, args: string[]) {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  return {
    output: () => out,
    url: () => waitFor(() => /http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+/.exec(out)?.[0], { timeoutMs: 90_000, what: `the page's URL (output: ${out})` }),
    stop: async () => { proc.kill('SIGINT'); return exited; },
  };
}

async function open(ctx: BrowserContext, url: string): Promise<Page> {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.goto(url);
  return page;
}

/** The text of every cell of the shown table's rows. */
const shownRows = (page: Page) => page.$$eval('#rows tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));

t.test('the pieces without a server: listen addresses, the token, values', async (t) => {
  t.same(parseListen(undefined), { host: '127.0.0.1', port: 8321 }, 'this machine only by default');
  t.same(parseListen('9000'), { host: '127.0.0.1', port: 9000 });
  t.same(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
  t.same(parseListen('[::1]:8080'), { host: '::1', port: 8080 });
  t.throws(() => parseListen('localhost'), /HOST:PORT/);
  const a = new WebToken();
  const b = new WebToken();
  t.not(a.value, b.value, 'a new token each time');
  t.ok(Buffer.from(a.value, 'base64url').length >= 32, '32 random bytes');
  t.ok(a.matches(a.value));
  t.notOk(a.matches(b.value));
  t.notOk(a.matches(a.value.slice(0, -1)));
  t.notOk(a.matches(''));
  t.notOk(a.matches(undefined));
  t.same(showValue('x'.repeat(500)), { text: 'x'.repeat(119) + '…', cut: 500 }, 'long text cut, its length kept');
  t.same(showValue(Buffer.from([1, 2, 3])), { text: '<3 bytes>', bytes: 3 });
  t.same(showValue(9007199254740993n), { text: '9007199254740993' }, 'int8 exact');
  t.equal(showValue(42n), 42);
  t.equal(showValue('<b>'), '<b>', 'text stays text: the page renders it with textContent');
});

t.test('pgfollow web: the token, the live page, the stream and the rows', async (t) => {
  const server = await cluster(t);
  const { conninfo, client } = await database(t, server);
  const dataDir = tempDir(t);
  await client.query("CREATE TABLE fruit (id int PRIMARY KEY, name text NOT NULL, note text); INSERT INTO fruit VALUES (1, 'apple', NULL), (2, 'pear', repeat('long ', 100))");
  startWorker(t, conninfo, dataDir);
  await client.query("SELECT start_follow($1, 'web.db')", [conninfo]);
  const file = path.join(dataDir, 'web.db');
  await waitFor(() => sqliteCount(file, 'fruit') === 2, { timeoutMs: 60_000, what: 'the initial copy' });

  const web = run(t, ['web', '--listen', '127.0.0.1:0', '--control', conninfo, '--data-dir', dataDir]);
  const url = await web.url();
  const base = new URL(url).origin;
  const token = new URL(url).searchParams.get('token')!;

  for (const p of ['/', '/api/status', '/events?follow=1', '/api/follows/1/rows?table=fruit', '/api/stream', '/assets/app.js', '/?token=wrong', `/?token=${token.slice(1)}`]) {
    const res = await fetch(base + p, { redirect: 'manual' });
    const body = await res.text();
    const what = p.replace(token.slice(1), '<the token less its first character>');
    t.equal(res.status, 403, `${what} without the token: 403`);
    t.notMatch(body, /apple|fruit|streaming|web\.db|postgres/, `${what}: no data in the refusal`);
  }
  const first = await fetch(url, { redirect: 'manual' });
  t.equal(first.status, 303, 'with the token: redirected out of the address bar');
  t.match(first.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Strict/, 'the token moves to a strict cookie');
  t.match(first.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/, 'a strict Content-Security-Policy');
  const sql = await fetch(`${base}/api/sql`, { method: 'POST', headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' }, body: '{"sql":"DROP TABLE fruit"}' });
  t.equal(sql.status, 404, 'no console unless asked for');
  const cross = await fetch(`${base}/api/sql`, { method: 'POST', headers: { Authorization: `token ${token}`, 'Content-Type': 'text/plain' }, body: '{"sql":"x"}' });
  t.equal(cross.status, 403, 'a request that is not JSON (a cross-site form) is refused');

  const ctx = await browser(t);
  const page = await open(ctx, url);
  t.notMatch(page.url(), /token=/, 'the token left the address bar');
  await page.waitForSelector('.follow.state-streaming', WAIT);
  await page.waitForFunction(() => document.querySelectorAll('#rows tbody tr').length === 2, null, WAIT);
  await page.waitForFunction(() => /streaming/.test(document.getElementById('stream-state')?.textContent ?? ''), null, WAIT);
  const html = await page.content();
  t.notMatch(html, /password=postgres/, 'no password on the page');
  t.match(html, /password=\*{8}/, 'the upstream shown masked');

  const hostile = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
  await client.query('INSERT INTO fruit VALUES (3, $1, $2)', ['kiwi', hostile]);
  await client.query("UPDATE fruit SET name = 'APPLE' WHERE id = 1");
  await page.waitForFunction(() => [...document.querySelectorAll('#stream .txn')].some((li) => /UPDATE\s*fruit\s*id=1\s*→\s*name=APPLE/.test(li.textContent ?? '')), null, WAIT);
  const streamText = await page.locator('#stream').innerText();
  t.match(streamText, /commit [0-9A-F]+\/[0-9A-F]+ at \d{4}-/, 'commits with their LSN and time');
  t.match(streamText, /INSERT\s+fruit\s+id=3\s+name=kiwi\s+note=<script>window.__pwned = 1<\/script><img/, 'the row change with its values, the hostile one as text');
  await page.waitForFunction(() => document.querySelectorAll('#rows tbody tr').length === 3, null, WAIT);
  const rows = await shownRows(page);
  t.same(rows.map((r) => r.slice(0, 2)), [['1', 'APPLE'], ['2', 'pear'], ['3', 'kiwi']], 'the SQLite rows on the page follow the upstream');
  t.equal(rows[2][2], hostile, 'the hostile value is shown as text, exactly');
  t.match(rows[1][2], /^(long ){20,}.*…$/, 'long values cut');
  t.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'no script of the data ran');
  t.equal(await page.evaluate(() => document.querySelectorAll('main script, main img').length), 0, 'no element made from the data');

  await client.query('ALTER TABLE fruit ADD COLUMN price numeric(6,2)');
  await page.waitForFunction(() => /ALTER TABLE "fruit" ADD COLUMN "price"/.test(document.getElementById('stream')?.textContent ?? ''), null, WAIT);
  t.match(await page.locator('#stream').innerText(), /ALTER TABLE public\.fruit[\s\S]*ALTER TABLE "fruit" ADD COLUMN "price"/, 'DDL with the SQLite statement it became');
  await page.click('#large');
  t.ok(await page.evaluate(() => document.body.classList.contains('large')), 'large type for projectors');
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'web-large.png'), fullPage: true });

  // --console: statements from the page run upstream, as the conninfo's role.
  await client.query('CREATE ROLE web_reader LOGIN PASSWORD $$secret-pw$$');
  const readerInfo = conninfo.replace('user=postgres password=postgres', 'user=web_reader password=secret-pw');
  const withConsole = run(t, ['web', '--listen', '127.0.0.1:0', '--control', conninfo, '--upstream', readerInfo, '--console']);
  const consoleUrl = new URL(await withConsole.url());
  const ask = (sql: string) => fetch(`${consoleUrl.origin}/api/sql`, {
    method: 'POST', headers: { Authorization: `token ${consoleUrl.searchParams.get('token')}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ sql }),
  }).then((r) => r.json() as Promise<{ ok: boolean; rows?: unknown[][]; error?: string }>);
  t.same((await ask('SELECT current_user')).rows, [['web_reader']], '--console runs as the conninfo\'s own role');
  t.match((await ask('DELETE FROM fruit')).error, /42501: permission denied/, 'with that role\'s rights only');
  t.equal(await withConsole.stop(), 0);

  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
  t.equal(await web.stop(), 0, 'Ctrl-C ends it');
  const slots = await client.query("SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'pgfollow_web_%'");
  t.equal(slots.rows[0].n, 0, "the stream's slot is dropped");
});

t.test('pgfollow demo --web: the console, step mode one transaction per click', async (t) => {
  const dataDir = tempDir(t);
  const demo = run(t, ['demo', '--web', '127.0.0.1:0', '--data-dir', dataDir]);
  const url = await demo.url();
  const psql = /psql "([^"]+)"/.exec(demo.output())?.[1];
  t.ok(psql, 'the demo prints a psql command for its Postgres');
  t.notMatch(demo.output(), /port=\d+ .*\n.*page:.*password/, 'the page URL carries no password');
  const client = await connect(userSessionConfig(psql!));
  t.teardown(() => client.end().catch(() => {}));
  const file = path.join(dataDir, 'demo.db');

  const ctx = await browser(t);
  const page = await open(ctx, url);
  await page.waitForSelector('#console-section:not([hidden])', WAIT);
  await page.waitForFunction(() => document.querySelectorAll('#rows tbody tr').length === 3, null, WAIT);
  await page.waitForFunction(() => /streaming/.test(document.getElementById('stream-state')?.textContent ?? ''), null, WAIT);

  await page.fill('#sql', "INSERT INTO fruit VALUES (4, 'date', 3.10)");
  await page.click('#run');
  await page.waitForFunction(() => /INSERT 0 1/.test(document.getElementById('sql-result')?.textContent ?? ''), null, WAIT);
  await page.waitForFunction(() => document.querySelectorAll('#rows tbody tr').length === 4, null, WAIT);
  await page.waitForFunction(() => /from the console: INSERT INTO fruit VALUES \(4/.test(document.getElementById('stream')?.textContent ?? ''), null, WAIT);
  t.pass('the console ran the statement upstream; stream and rows show it');
  await page.fill('#sql', 'SELECT name, price FROM fruit ORDER BY id');
  await page.click('#run');
  await page.waitForFunction(() => /SELECT 4/.test(document.getElementById('sql-result')?.textContent ?? ''), null, WAIT);
  t.match(await page.locator('#sql-result').innerText(), /date\s+3\.10/, 'a query shows its rows');
  await page.fill('#sql', 'SELECT 1/0');
  await page.click('#run');
  await page.waitForFunction(() => /22012: division by zero/.test(document.getElementById('sql-result')?.textContent ?? ''), null, WAIT);
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'demo.png'), fullPage: true });

  // Step mode: three transactions upstream, one through per click.
  await page.click('#step-toggle');
  await page.waitForFunction(() => document.getElementById('step-toggle')?.getAttribute('aria-pressed') === 'true', null, WAIT);
  for (const id of [10, 11, 12]) await client.query('INSERT INTO fruit VALUES ($1, $2, 1)', [id, `step ${id}`]);
  const lsnOf = async () => (await page.locator('#held-lsn').textContent()) ?? '';
  const applied = () => page.waitForFunction(() => /now holds this transaction/.test(document.getElementById('step-applied')?.textContent ?? ''), null, WAIT);
  await page.waitForSelector('#held-lsn', WAIT);
  await applied();
  // The change stream (its own slot, not stepped) has all three, the stepped follow only the first.
  await page.waitForFunction(() => /step 12/.test(document.getElementById('stream')?.textContent ?? ''), null, WAIT);
  t.equal(sqliteCount(file, 'fruit'), 5, 'held after the first transaction: its row is in the file, the next two are not');
  await page.waitForFunction(() => document.querySelectorAll('#rows tbody tr').length === 5, null, WAIT);
  let held = await page.locator('#step-held').innerText();
  t.match(held, /Begin[\s\S]*Insert public\.fruit \(10, step 10, 1\.00\)[\s\S]*Commit/, 'the messages the follow received');
  t.match(held, /INSERT\s+fruit\s+id=10 name=step 10/, 'what SQLite ran');
  await page.screenshot({ path: path.join(SHOTS, 'step-mode.png'), fullPage: true });
  for (const [i, id] of [[6, 11], [7, 12]]) {
    const before = await lsnOf();
    await page.click('#step-next');
    await page.waitForFunction((b) => { const l = document.getElementById('held-lsn')?.textContent; return l && l !== b; }, before, WAIT);
    await applied();
    t.equal(sqliteCount(file, 'fruit'), i, `one click, one transaction (${id})`);
    held = await page.locator('#step-held').innerText();
    t.match(held, new RegExp(`INSERT\\s+fruit\\s+id=${id} name=step ${id}`), `the step shows transaction ${id}`);
    await page.waitForFunction((n) => document.querySelectorAll('#rows tbody tr').length === n, i, WAIT);
  }
  // A statement from the console, stepped: the step shows the statement it came from.
  await page.fill('#sql', "UPDATE fruit SET price = 9 WHERE id = 10");
  await page.click('#run');
  const prior = await lsnOf();
  await page.click('#step-next');
  await page.waitForFunction((b) => { const l = document.getElementById('held-lsn')?.textContent; return l && l !== b; }, prior, WAIT);
  await page.waitForFunction(() => /1\. Statement\s*UPDATE fruit SET price = 9 WHERE id = 10/.test(document.getElementById('step-held')?.textContent ?? ''), null, WAIT);
  t.pass('the step shows the console statement');
  await page.screenshot({ path: path.join(SHOTS, 'step-mode-console.png'), fullPage: true });
  await page.click('#step-toggle');
  await page.waitForFunction(() => document.getElementById('step-toggle')?.getAttribute('aria-pressed') === 'false', null, WAIT);
  await client.query("INSERT INTO fruit VALUES (13, 'after', 1)");
  await waitFor(() => sqliteCount(file, 'fruit') === 8, { timeoutMs: 30_000, what: 'the follow going on once step mode is off' });

  const mark = await client.query("SELECT pg_logical_emit_message(true, 'pgfollow.mark', '')::text AS lsn");
  await waitFor(async () => (await client.query('SELECT applied_lsn >= $1::pg_lsn AS ok FROM pgfollow.follow_status WHERE id = 1', [mark.rows[0].lsn])).rows[0]?.ok, { timeoutMs: 30_000, what: 'the follow caught up' });
  const cmp = await compareAll(client as pg.Client, file);
  t.ok(cmp.equal, cmp.report);
  await client.end();
  t.equal(await demo.stop(), 0, 'Ctrl-C ends the demo');
});
