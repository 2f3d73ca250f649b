// pgfollow's web page. Every value shown comes from the server as JSON data and reaches the page
// through textContent or createTextNode only: table data is never parsed as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}

/** A value as the server shows it: null, a number, a string, or { text, cut, bytes }. */
function value(v) {
  if (v === null) return el('span', { class: 'v null', text: 'NULL' });
  if (typeof v === 'object') {
    return el('span', { class: v.bytes !== undefined ? 'v bytes' : 'v', title: v.cut ? `cut; ${v.cut} characters in full` : null, text: v.text });
  }
  return el('span', { class: typeof v === 'number' ? 'v num' : 'v', text: String(v) });
}

function fields(obj) {
  return Object.entries(obj || {}).map(([k, v]) => [el('span', { class: 'field' }, el('span', { class: 'k', text: k }), '=', value(v)), ' ']);
}

/** An LSN ("16/B374D848") as a number that compares. */
function lsnValue(text) {
  const m = /^([0-9A-F]+)\/([0-9A-F]+)$/i.exec(text || '');
  return m ? BigInt(`0x${m[1]}`) * 2n ** 32n + BigInt(`0x${m[2]}`) : -1n;
}

const state = {
  follow: Number(new URLSearchParams(location.hash.slice(1)).get('follow')) || null,
  snapshot: null, transactions: [], lastSeq: 0, appliedLsn: null, table: null, offset: 0, step: null, source: null, seen: {},
};

async function api(path, body) {
  const res = await fetch(path, body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok && !json.error) json.error = `HTTP ${res.status}`;
  return json;
}

// ---- follows: state, positions, lag chart ----

const SHOWN = [['state', 'State'], ['upstream', 'Upstream'], ['sqlite_path', 'SQLite file'], ['applied_lsn', 'Applied'], ['upstream_lsn', 'Upstream at'],
  ['lag_bytes', 'Lag (bytes)'], ['lag_seconds', 'Lag (s)'], ['xacts_applied', 'Transactions'], ['rows_applied', 'Rows'], ['tables', 'Tables'],
  ['copy_progress', 'Copy'], ['rejected_messages', 'Rejected messages'], ['last_error', 'Last error'], ['last_error_at', 'Error at']];

function lagChart(samples) {
  const w = 240, h = 48;
  const bytes = samples.map((s) => s.bytes ?? 0);
  const max = Math.max(1, ...bytes);
  const now = bytes.length ? bytes[bytes.length - 1] : 0;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(h));
  svg.setAttribute('role', 'img');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('aria-label', `Lag over the last ${samples.length} seconds: now ${now} bytes, at most ${Math.max(...bytes, 0)} bytes`);
  const base = document.createElementNS(SVG, 'line');
  for (const [k, v] of Object.entries({ x1: 0, y1: h - 1, x2: w, y2: h - 1, class: 'axis' })) base.setAttribute(k, String(v));
  svg.append(base);
  if (bytes.length > 1) {
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', bytes.map((b, i) => `${((i / (bytes.length - 1)) * w).toFixed(1)},${(h - 2 - (b / max) * (h - 4)).toFixed(1)}`).join(' '));
    line.setAttribute('class', 'lag');
    svg.append(line);
  }
  return el('figure', { class: 'lagfig' }, svg, el('figcaption', { text: `lag, last ${samples.length} s (max ${max === 1 && !bytes.some((b) => b) ? 0 : max} bytes)` }));
}

function renderFollows(s) {
  state.snapshot = s;
  $('control-error').hidden = !s.error;
  $('control-error').textContent = s.error ? `The control database cannot be read: ${s.error}` : '';
  if (!state.follow && s.follows.length) selectFollow(s.follows[0].id, false);
  const cards = s.follows.map((f) => {
    const st = f.status;
    const chosen = f.id === state.follow;
    const dl = el('dl', { class: 'facts' }, SHOWN.filter(([k]) => st[k] !== null && st[k] !== undefined)
      .map(([k, label]) => [el('dt', { text: label }), el('dd', { class: `f-${k}` }, value(st[k]))]));
    const held = f.heldTables.length ? el('ul', { class: 'held-tables', 'aria-label': 'Tables held in error' },
      f.heldTables.map((h) => el('li', { class: 'error' }, `${h.schema_name}.${h.table_name}: `, value(h.last_error)))) : null;
    return el('article', { class: `follow state-${typeof st.state === 'string' ? st.state : 'x'}${chosen ? ' chosen' : ''}`, 'aria-label': `Follow ${f.id}`, 'data-follow': f.id },
      el('h3', {}, `Follow ${f.id} `, el('span', { class: 'badge', text: typeof st.state === 'string' ? st.state : '' })),
      dl, lagChart(f.lag), held,
      chosen ? el('p', { class: 'sub', text: 'shown below' }) : el('button', { type: 'button', onclick: () => selectFollow(f.id, true), text: `Show follow ${f.id}` }));
  });
  $('follows').replaceChildren(...(cards.length ? cards : [el('p', { text: "No follows yet. In psql: SELECT start_follow('<conninfo>', 'app.db');" })]));
}

function selectFollow(id, reconnect) {
  state.follow = id;
  state.table = null;
  state.offset = 0;
  history.replaceState(null, '', `#follow=${id}`);
  if (state.snapshot && reconnect) renderFollows(state.snapshot);
  if (reconnect) connect();
  refreshFile();
}

// ---- the change stream ----

function ddlBlock(d) {
  return el('div', { class: 'ddl' }, el('span', { class: 'op ddl', text: d.tag }), ' ', d.tables.join(', '),
    el('ul', { class: 'sqlite', 'aria-label': 'SQLite statements' }, d.statements.map((q) => el('li', {}, el('code', { text: q })))));
}

function rowLine(r) {
  const parts = [el('span', { class: `op ${r.op}`, text: r.op.toUpperCase() }), ' ', el('span', { class: 'table', text: r.table }), ' '];
  if (r.op === 'insert') parts.push(...fields(r.values));
  else if (r.op === 'update') {
    // The key is shown once: values that only repeat it are left out (as pgfollow tail does).
    const set = Object.fromEntries(Object.entries(r.values || {}).filter(([k, v]) => !(r.key && k in r.key && JSON.stringify(r.key[k]) === JSON.stringify(v))));
    parts.push(...fields(r.key), ' → ', ...fields(set));
  }
  else if (r.op === 'delete') parts.push(...fields(r.key));
  return el('li', { class: 'row-change' }, parts);
}

function transactionItem(t) {
  return el('li', { class: 'txn', 'data-lsn': t.lsn },
    el('div', { class: 'commit' }, 'commit ', el('code', { text: t.lsn }), t.commitTime ? ` at ${t.commitTime}` : ''),
    t.statement ? el('div', { class: 'statement' }, 'from the console: ', el('code', { text: t.statement })) : null,
    t.ddl.map(ddlBlock),
    el('ul', { class: 'rows' }, t.rows.map(rowLine)),
    t.moreRows ? el('p', { class: 'sub', text: `… and ${t.moreRows} more row changes` }) : null);
}

function addTransaction(t) {
  if (t.seq <= state.lastSeq) return;
  state.lastSeq = t.seq;
  state.transactions.push(t);
  if (state.transactions.length > 200) state.transactions.shift();
  for (const [table, c] of Object.entries(t.tables)) {
    const s = (state.seen[table] ??= { inserted: 0, updated: 0, deleted: 0 });
    s.inserted += c.inserted; s.updated += c.updated; s.deleted += c.deleted;
  }
  const list = $('stream');
  list.prepend(transactionItem(t));
  while (list.children.length > 200) list.lastElementChild.remove();
  if (state.step?.held?.lsn === t.lsn) renderStep(state.step);
}

// ---- the SQLite file: tables and rows ----

// One reload at a time, at most every 300 ms: a busy follow moves its position all the time.
let refreshing = null;
let lastRefresh = 0;
function refreshFile() {
  if (refreshing) { refreshing.again = true; return; }
  refreshing = { again: false };
  const wait = Math.max(0, lastRefresh + 300 - Date.now());
  setTimeout(() => {
    lastRefresh = Date.now();
    loadFile().catch(() => {}).finally(() => { const again = refreshing.again; refreshing = null; if (again) refreshFile(); });
  }, wait);
}

async function loadFile() {
  if (!state.follow) return;
  const t = await api(`/api/follows/${state.follow}/tables`);
  $('file').textContent = t.file ? `${t.file}${t.appliedLsn ? ` — applied up to ${t.appliedLsn}` : ''}` : '';
  $('file-error').hidden = !t.unavailable && !t.error;
  $('file-error').textContent = t.unavailable ? `The file cannot be read here: ${t.unavailable}` : t.error || '';
  const follow = state.snapshot?.follows.find((f) => f.id === state.follow);
  const errors = Object.fromEntries((follow?.heldTables || []).map((h) => [h.table_name, h.last_error]));
  const tables = t.tables || [];
  if (!state.table && tables.length) state.table = tables[0].name;
  $('tables').tBodies[0].replaceChildren(...tables.map((x) => {
    const seen = state.seen[x.name] || { inserted: 0, updated: 0, deleted: 0 };
    return el('tr', { class: x.name === state.table ? 'chosen' : '' },
      el('th', { scope: 'row' }, el('button', { type: 'button', class: 'link', onclick: () => { state.table = x.name; state.offset = 0; refreshFile(); }, text: x.name })),
      el('td', { class: 'num', text: x.rows }), el('td', { class: 'num', text: seen.inserted }), el('td', { class: 'num', text: seen.updated }),
      el('td', { class: 'num', text: seen.deleted }), el('td', {}, errors[x.name] ? value(errors[x.name]) : ''));
  }));
  if (!tables.some((x) => x.name === state.table)) state.table = null;
  await loadRows();
}

async function loadRows() {
  const rowsTable = $('rows');
  if (!state.table) {
    $('rows-caption').textContent = 'No table chosen';
    rowsTable.tHead.replaceChildren();
    rowsTable.tBodies[0].replaceChildren();
    return;
  }
  const p = await api(`/api/follows/${state.follow}/rows?table=${encodeURIComponent(state.table)}&offset=${state.offset}`);
  if (p.error) { $('rows-caption').textContent = p.error; return; }
  $('rows-caption').textContent = `${p.table}: rows ${p.total ? p.offset + 1 : 0}–${p.offset + p.rows.length} of ${p.total}`;
  rowsTable.tHead.replaceChildren(el('tr', {}, p.columns.map((c) => el('th', { scope: 'col', text: c }))));
  rowsTable.tBodies[0].replaceChildren(...p.rows.map((r) => el('tr', {}, r.map((v) => el('td', {}, value(v))))));
  $('prev').disabled = p.offset === 0;
  $('next').disabled = p.offset + p.rows.length >= p.total;
}
$('prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - 100); refreshFile(); });
$('next').addEventListener('click', () => { state.offset += 100; refreshFile(); });

// ---- step mode (the demo's) ----

function renderStep(s) {
  if (!s || (state.step && s.version < state.step.version)) return; // an answer older than what the live channel said
  state.step = s;
  $('step-section').hidden = false;
  const toggle = $('step-toggle');
  toggle.setAttribute('aria-pressed', String(s.stepping));
  toggle.textContent = `Step mode: ${s.stepping ? 'on' : 'off'}`;
  $('step-next').disabled = !s.held;
  const box = $('step-held');
  if (!s.held) {
    box.replaceChildren(el('p', { class: 'sub', text: s.stepping ? 'Waiting for the next upstream transaction… run a statement.' : 'Step mode is off: the follow applies everything as it comes.' }));
    return;
  }
  const t = state.transactions.find((x) => x.lsn === s.held.lsn);
  box.replaceChildren(
    el('p', { class: 'stopped' }, 'Stopped after the transaction that committed at ', el('code', { id: 'held-lsn', text: s.held.lsn })),
    el('ol', { class: 'steps' },
      el('li', {}, el('h3', { text: '1. Statement' }), s.held.statement ? el('code', { text: s.held.statement }) : el('span', { class: 'sub', text: '(not from this console: psql or another session)' })),
      el('li', {}, el('h3', { text: '2. Messages the follow received (pgoutput)' }),
        s.held.more ? el('p', { class: 'sub', text: `(${s.held.more} more messages before the Commit, not shown)` }) : null,
        el('ul', { class: 'messages' }, s.held.messages.map((m) => el('li', {}, el('span', { class: 'op msg', text: m.tag }), ' ', m.text, m.values ? [' (', m.values.map((v, i) => [i ? ', ' : '', value(v)]), ')'] : null)))),
      el('li', {}, el('h3', { text: '3. What SQLite ran' }), t
        ? el('div', {}, t.ddl.map(ddlBlock), el('ul', { class: 'rows' }, t.rows.map(rowLine)), t.ddl.length || t.rows.length ? null : el('p', { class: 'sub', text: 'nothing for the file (a message or a table it does not follow)' }))
        : el('p', { class: 'sub', text: 'nothing for the file yet (a marker, or the stream is still on its way)' })),
      el('li', {}, el('h3', { text: '4. Rows' }), el('p', { id: 'step-applied', text: lsnValue(state.appliedLsn) >= lsnValue(s.held.lsn)
        ? 'The SQLite file below now holds this transaction, and nothing after it.' : 'SQLite is applying it…' }))));
}

$('step-toggle').addEventListener('click', async () => renderStep(await api('/api/step', { action: state.step?.stepping ? 'off' : 'on' })));
$('step-next').addEventListener('click', async () => { $('step-next').disabled = true; renderStep(await api('/api/step', { action: 'next' })); });

// ---- the console (the demo's, or pgfollow web --console) ----

const EXAMPLES = [
  "INSERT INTO fruit VALUES (10, 'kiwi', 1.20)",
  "UPDATE fruit SET price = price * 2 WHERE id = 1",
  "ALTER TABLE fruit ADD COLUMN colour text DEFAULT 'unknown'",
  'DELETE FROM fruit WHERE id = 2',
  "BEGIN; INSERT INTO fruit VALUES (20, 'fig', 2); INSERT INTO fruit VALUES (21, 'lime', 0.3); COMMIT",
];

function showResult(r) {
  const box = $('sql-result');
  if (!r.ok) { box.replaceChildren(el('p', { class: 'error', text: r.error })); return; }
  const table = r.columns && r.columns.length ? el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, r.columns.map((c) => el('th', { scope: 'col', text: c })))),
    el('tbody', {}, r.rows.map((row) => el('tr', {}, row.map((v) => el('td', {}, value(v))))))) : null;
  box.replaceChildren(...[el('p', { class: 'ok', text: `${r.command || 'done'} (${r.ms} ms)${r.more ? `, ${r.more} more rows not shown` : ''}` }), table].filter(Boolean));
}

$('console-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const sql = $('sql').value;
  if (!sql.trim()) return;
  $('run').disabled = true;
  $('sql-result').replaceChildren(el('p', { class: 'sub', text: 'running…' }));
  try { showResult(await api('/api/sql', { sql })); } finally { $('run').disabled = false; }
});
$('examples').replaceChildren(...EXAMPLES.map((q) => el('button', { type: 'button', class: 'example', onclick: () => { $('sql').value = q; $('sql').focus(); }, text: q.length > 40 ? `${q.slice(0, 39)}…` : q, title: q })));

// ---- the live channel ----

function connect() {
  state.source?.close();
  const src = new EventSource(`/events?follow=${state.follow ?? ''}&since=${state.lastSeq}`);
  state.source = src;
  const live = $('live');
  src.onopen = () => { live.textContent = 'live'; live.className = 'live on'; };
  src.onerror = () => {
    // Refused (a new server has a new token) ends the channel for good; anything else is retried.
    live.textContent = src.readyState === EventSource.CLOSED ? 'disconnected: open the URL pgfollow printed' : 'reconnecting…';
    live.className = 'live off';
  };
  const on = (name, fn) => src.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  on('status', renderFollows);
  on('transaction', addTransaction);
  on('stream-state', (s) => { $('stream-state').textContent = `of ${s.upstream}: ${s.state}${s.error ? ` (${s.error})` : ''}`; });
  on('step', renderStep);
  on('applied', (a) => {
    state.appliedLsn = a.lsn;
    refreshFile();
    if (state.step?.held) renderStep(state.step);
  });
}

function largeType(on) {
  document.body.classList.toggle('large', on);
  $('large').setAttribute('aria-pressed', String(on));
  try { localStorage.setItem('pgfollow-large', on ? '1' : ''); } catch { /* private mode */ }
}
$('large').addEventListener('click', () => largeType(!document.body.classList.contains('large')));

(async () => {
  largeType(new URLSearchParams(location.search).has('large') || (() => { try { return localStorage.getItem('pgfollow-large') === '1'; } catch { return false; } })());
  const s = await api('/api/status');
  $('console-section').hidden = !s.console;
  if (s.step) renderStep(s.step);
  if (s.follows) renderFollows(s);
  connect();
  refreshFile();
})();
