// Checks the Docker Compose setup by reading it: there is no Docker engine in the test
// environment, so nothing here builds or starts a container. What it can check is that the
// pieces agree with each other and with the repository: the upstream is configured for logical
// decoding, the worker waits for it and is pointed at it, every file the stack mounts or copies
// exists, and the image starts the CLI that package.json builds.

import t from 'tap';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { parse } from 'yaml';
import { conninfoValues, parseConninfo } from '../../src/upstream/conninfo.js';
import { ROOT as root } from '../../src/dev/cli.js';

type Dict = Record<string, unknown>;

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function dict(v: unknown): Dict {
  return isDict(v) ? v : {};
}

/** A compose `command` or healthcheck `test`, as a list of words. */
function words(v: unknown): string[] {
  if (typeof v === 'string') return v.trim().split(/\s+/);
  if (Array.isArray(v)) return v.map((w) => String(w));
  return [];
}

/** A compose `environment`, in either the map or the `KEY=value` list form. */
function environment(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = String(item);
      const eq = s.indexOf('=');
      if (eq > 0) out[s.slice(0, eq)] = s.slice(eq + 1);
    }
  } else if (isDict(v)) {
    for (const [k, val] of Object.entries(v)) out[k] = val === null ? '' : String(val);
  }
  return out;
}

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** A service's `volumes`, in either the short `src:dst[:mode]` or the long form. */
function mounts(service: Dict): Mount[] {
  const list = Array.isArray(service.volumes) ? service.volumes : [];
  return list.map((m): Mount => {
    if (typeof m === 'string') {
      const [source = '', target = '', mode = ''] = m.split(':');
      return { source, target, readOnly: mode.split(',').includes('ro') };
    }
    const d = dict(m);
    return {
      source: String(d.source ?? ''),
      target: String(d.target ?? ''),
      readOnly: d.read_only === true,
    };
  });
}

function isHostPath(source: string): boolean {
  return source.startsWith('./') || source.startsWith('../') || source === '.' || source.startsWith('/');
}

/** The word after `flag` in `argv`, or undefined. */
function flagValue(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : undefined;
}

const composePath = join(root, 'docker-compose.yml');
const compose = dict(parse(readFileSync(composePath, 'utf8')));
const services = dict(compose.services);
const upstream = dict(services.upstream);
const worker = dict(services.worker);
const upstreamEnv = environment(upstream.environment);

t.test('upstream is a Postgres set up for logical decoding', async (t) => {
  t.ok(isDict(services.upstream), 'service "upstream" is defined');
  t.match(String(upstream.image ?? ''), /^postgres:/, 'runs a postgres image');
  const argv = words(upstream.command);
  const settings = new Map<string, string>();
  argv.forEach((w, i) => {
    if (w === '-c' && i + 1 < argv.length) {
      const [k = '', v = ''] = argv[i + 1].split('=');
      settings.set(k, v);
    }
  });
  t.equal(settings.get('wal_level'), 'logical', 'command sets -c wal_level=logical');
  for (const key of ['max_replication_slots', 'max_wal_senders']) {
    t.ok(Number(settings.get(key)) > 0, `command sets -c ${key} to a positive number`);
  }
  t.ok(upstreamEnv.POSTGRES_PASSWORD, 'POSTGRES_PASSWORD is set');
  t.ok(upstreamEnv.POSTGRES_DB, 'POSTGRES_DB is set');
  const ports = Array.isArray(upstream.ports) ? upstream.ports.map(String) : [];
  t.ok(ports.some((p) => /(^|:)5432$/.test(p)), 'container port 5432 is published');
});

t.test('upstream has a healthcheck that asks Postgres itself', async (t) => {
  const hc = dict(upstream.healthcheck);
  t.ok(isDict(upstream.healthcheck), 'healthcheck is defined');
  t.not(hc.disable, true, 'healthcheck is not disabled');
  const test = words(hc.test);
  t.ok(test.includes('pg_isready'), 'healthcheck runs pg_isready');
  const db = flagValue(test, '-d');
  t.equal(db, upstreamEnv.POSTGRES_DB, 'pg_isready checks POSTGRES_DB');
});

t.test('worker waits for a healthy upstream', async (t) => {
  t.ok(isDict(services.worker), 'service "worker" is defined');
  t.ok(isDict(worker.depends_on), 'depends_on uses the long form, which can carry a condition');
  const dep = dict(dict(worker.depends_on).upstream);
  t.equal(dep.condition, 'service_healthy', 'worker depends on upstream with condition service_healthy');
  t.equal(worker.restart, 'unless-stopped', 'worker is restarted unless stopped');
});

t.test('worker command runs the worker against the upstream', async (t) => {
  const argv = words(worker.command);
  t.ok(Array.isArray(worker.command), 'command is a list, so the conninfo stays one argument');
  t.equal(argv[0], 'worker', 'command starts with the worker subcommand');
  const control = flagValue(argv, '--control');
  const dataDir = flagValue(argv, '--data-dir');
  t.ok(control, 'command has --control <conninfo>');
  t.ok(dataDir, 'command has --data-dir <dir>');

  const ci = Object.fromEntries(conninfoValues(parseConninfo(control ?? '')));
  t.equal(ci.host, 'upstream', 'control conninfo names the upstream service as host');
  t.ok(isDict(services[ci.host ?? '']), 'the host in the conninfo is a service of this stack');
  t.equal(ci.dbname, upstreamEnv.POSTGRES_DB, 'control conninfo dbname is POSTGRES_DB');
  t.equal(ci.user ?? 'postgres', upstreamEnv.POSTGRES_USER ?? 'postgres', 'control conninfo user is POSTGRES_USER');
  t.equal(ci.password, upstreamEnv.POSTGRES_PASSWORD, 'control conninfo password is POSTGRES_PASSWORD');
  t.equal(ci.port ?? '5432', '5432', 'control conninfo uses the container port');

  const targets = mounts(worker).map((m) => m.target);
  t.ok(dataDir !== undefined && targets.includes(dataDir), '--data-dir is a mounted volume');
});

t.test('mounts refer to things that exist', async (t) => {
  const declared = dict(compose.volumes);
  let named = 0;
  let host = 0;
  for (const [name, svc] of Object.entries(services)) {
    for (const m of mounts(dict(svc))) {
      if (isHostPath(m.source)) {
        host++;
        t.ok(existsSync(join(root, normalize(m.source))), `${name}: host path ${m.source} exists in the repository`);
        t.ok(m.readOnly, `${name}: host path ${m.source} is mounted read-only`);
      } else if (m.source) {
        named++;
        t.ok(m.source in declared, `${name}: named volume ${m.source} is declared under volumes:`);
      }
    }
  }
  t.ok('pgfollow-data' in declared, 'named volume pgfollow-data is declared');
  t.ok(named > 0, 'the stack uses at least one named volume');
  t.ok(host > 0, 'the stack mounts files from the repository');
});

t.test('upstream installs pgfollow on first start', async (t) => {
  const m = mounts(upstream);
  const init = m.find((x) => x.target.startsWith('/docker-entrypoint-initdb.d/'));
  t.ok(init, 'something is mounted into /docker-entrypoint-initdb.d');
  // The image runs files directly inside that directory, and only *.sh, *.sql and compressed *.sql.
  t.match(init?.target ?? '', /^\/docker-entrypoint-initdb\.d\/[^/]+\.sh$/, 'the init entry is a shell script directly inside it');
  t.equal(init?.source, './docker/initdb.sh', 'the init script is docker/initdb.sh');
  const sqlMount = m.find((x) => x.source === './sql');
  t.ok(sqlMount, 'the sql/ directory is mounted');

  const script = join(root, 'docker', 'initdb.sh');
  t.ok(existsSync(script), 'docker/initdb.sh exists');
  if (!existsSync(script)) return;
  if (process.platform !== 'win32') {
    t.ok((statSync(script).mode & 0o111) !== 0, 'docker/initdb.sh is executable');
  }
  const text = readFileSync(script, 'utf8');
  t.match(text, /^#!/, 'docker/initdb.sh has a shebang line');
  t.match(text, /install\.sql/, 'docker/initdb.sh references install.sql');
  t.match(text, /ON_ERROR_STOP=1/, 'docker/initdb.sh stops on the first SQL error');
  t.ok(
    sqlMount !== undefined && text.includes(`${sqlMount.target}/install.sql`),
    'docker/initdb.sh reads install.sql from where sql/ is mounted',
  );
  t.ok(existsSync(join(root, 'sql', 'install.sql')), 'sql/install.sql exists');
});

t.test('Dockerfile builds the CLI the worker runs', async (t) => {
  t.equal(worker.build, '.', 'worker is built from the repository root');
  const dockerfile = join(root, 'Dockerfile');
  t.ok(existsSync(dockerfile), 'Dockerfile exists');
  if (!existsSync(dockerfile)) return;
  // Join continuation lines, drop comments.
  const lines = readFileSync(dockerfile, 'utf8')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  const entry = lines.filter((l) => /^ENTRYPOINT\s/i.test(l)).pop();
  t.ok(entry, 'Dockerfile has an ENTRYPOINT');
  let entryArgv: unknown = undefined;
  try {
    entryArgv = JSON.parse(entry?.replace(/^ENTRYPOINT\s+/i, '') ?? '');
  } catch {
    // left undefined: reported below
  }
  t.ok(Array.isArray(entryArgv), 'ENTRYPOINT uses the exec (JSON) form, so signals reach node');
  const argv = words(entryArgv);
  t.equal(argv[0], 'node', 'ENTRYPOINT runs node');
  t.match(argv[1] ?? '', /(^|\/)dist\/src\/cli\.js$/, 'ENTRYPOINT runs dist/src/cli.js');
  const pkg = dict(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')));
  const bin = dict(pkg.bin).pgfollow;
  t.ok(typeof bin === 'string' && (argv[1] ?? '').endsWith(normalize(bin).replace(/^\.\//, '')),
    'ENTRYPOINT runs the same file as the package.json bin');

  t.ok(lines.some((l) => /^USER\s+(?!root\b|0\b)\S+/i.test(l)), 'the image runs as a non-root user');
  t.ok(lines.some((l) => /^VOLUME\s.*\/data\b/i.test(l)), 'the image declares /data as a volume');

  // What reaches the image: the COPY sources from the build context, filtered by .dockerignore.
  const ignore = join(root, '.dockerignore');
  t.ok(existsSync(ignore), '.dockerignore exists');
  const ignored = existsSync(ignore)
    ? readFileSync(ignore, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    : [];
  for (const entry of ['node_modules', 'dist', '.git']) {
    t.ok(ignored.includes(entry), `.dockerignore keeps ${entry} out of the build context`);
  }
  const sources: string[] = [];
  for (const l of lines.filter((x) => /^COPY\s/i.test(x))) {
    if (/--from=/i.test(l)) continue;
    const parts = l.split(/\s+/).slice(1).filter((p) => !p.startsWith('--'));
    sources.push(...parts.slice(0, -1).map((p) => p.replace(/^\.\/(?=.)/, '').replace(/\/$/, '')));
  }
  const copiesContext = sources.includes('.');
  // A path copied by name must exist and, if a directory, hold a file: git keeps no empty
  // directories, so an empty one would be missing from a fresh clone and COPY would fail.
  for (const src of sources.filter((s) => s !== '.')) {
    const p = join(root, normalize(src));
    const isDir = existsSync(p) && statSync(p).isDirectory();
    t.ok(existsSync(p) && (!isDir || readdirSync(p).length > 0), `COPY source ${src} exists${isDir ? ' and is not empty' : ''}`);
  }
  // tsc (the prepare script) must see everything tsconfig.json includes, and the image needs sql/.
  const tsconfig = dict(JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')));
  const include = Array.isArray(tsconfig.include) ? tsconfig.include.map(String) : [];
  t.ok(include.length > 0, 'tsconfig.json lists what it compiles');
  const needed = new Set(['package.json', 'package-lock.json', 'tsconfig.json', 'sql']);
  for (const pattern of include) needed.add(pattern.split('/')[0] ?? '');
  for (const path of needed) {
    const excluded = ignored.some((l) => l === path || l === `${path}/` || l === '*' || l === '**');
    t.ok(
      sources.includes(path) || (copiesContext && !excluded),
      `${path} reaches the build stage (copied by name, or with the context and not in .dockerignore)`,
    );
  }
});

t.test('nats runs JetStream with file storage on a volume, and a replica follows its stream', async (t) => {
  const nats = dict(services.nats);
  t.ok(isDict(services.nats), 'service "nats" is defined');
  t.match(String(nats.image ?? ''), /^nats:/, 'runs a nats image');
  const argv = words(nats.command);
  t.ok(argv.includes('-js') || argv.includes('--jetstream'), 'JetStream is enabled');
  const store = flagValue(argv, '-sd') ?? flagValue(argv, '--store_dir');
  t.ok(store, 'a store directory is given (file storage)');
  const natsMounts = mounts(nats);
  t.ok(natsMounts.some((m) => m.target === store && !isHostPath(m.source) && m.source in dict(compose.volumes)), 'the store directory is a named volume: messages survive a restart');
  t.ok(words(dict(nats.healthcheck).test).some((w) => /healthz/.test(w)), 'healthcheck asks the server itself');

  const replica = dict(services.replica);
  t.ok(isDict(services.replica), 'service "replica" is defined');
  t.equal(replica.build, '.', 'replica runs the pgfollow image');
  const r = words(replica.command);
  t.ok(Array.isArray(replica.command), 'command is a list');
  t.equal(r[0], 'replica', 'command runs the replica subcommand');
  const url = flagValue(r, '--nats') ?? '';
  const host = /^nats:\/\/([^:/]+)/.exec(url)?.[1];
  t.equal(host, 'nats', '--nats names the nats service');
  t.equal(dict(dict(replica.depends_on).nats).condition, 'service_healthy', 'replica waits for a healthy nats');
  t.match(flagValue(r, '--stream') ?? '', /^[A-Za-z0-9_-]+$/, '--stream is a valid stream name');
  const sqlite = flagValue(r, '--sqlite') ?? '';
  t.ok(mounts(replica).some((m) => sqlite.startsWith(m.target + '/')), '--sqlite is on a mounted volume');
  t.ok(r.includes('--wait-for-stream'), 'the replica waits for the feed to create the stream');
  t.notOk(JSON.stringify(replica).includes('upstream'), 'the replica is given no way to the upstream');
});
