-- pgfollow control plane: roles, the follows table, the functions a DBA drives follows with from
-- psql, and the view pgfollow.follow_status. Included by install.sql; assumes schema pgfollow.
--
-- Who may do what:
--   superusers and members of pgfollow_admin   start, stop, pause, resume, resync, remove follows
--   members of pgfollow_monitor                 read follow_status, call wait_for_follow
--   (pgfollow_admin is a member of pgfollow_monitor)
-- The control table itself holds conninfos, possibly with passwords: nobody but its owner reads it.
-- Every function that needs privileges is SECURITY DEFINER with search_path pinned to
-- pg_catalog, pg_temp, so objects other roles create (in public or anywhere) are never used by it.

-- ---------------------------------------------------------------------------------------------
-- Roles (cluster-wide: shared by every database pgfollow is installed in)
-- ---------------------------------------------------------------------------------------------

DO $roles$
DECLARE
  r text;
  why text;
BEGIN
  -- Roles made by someone else before pgfollow was installed could be handed out by them: refuse
  -- a role with powers of its own, or one that a role other than a superuser may grant or granted.
  FOREACH r IN ARRAY ARRAY['pgfollow_monitor', 'pgfollow_admin'] LOOP
    SELECT string_agg(x, '; ') INTO why FROM (
      SELECT 'it has attributes pgfollow never gives it (LOGIN, SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS)' AS x
        FROM pg_catalog.pg_roles ro
       WHERE ro.rolname = r AND (ro.rolcanlogin OR ro.rolsuper OR ro.rolcreaterole OR ro.rolcreatedb OR ro.rolreplication OR ro.rolbypassrls)
      UNION ALL
      SELECT format('%s may grant it (ADMIN OPTION)', quote_ident(mr.rolname))
        FROM pg_catalog.pg_auth_members m
        JOIN pg_catalog.pg_roles mr ON mr.oid = m.member
       WHERE m.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r) AND m.admin_option AND NOT mr.rolsuper
      UNION ALL
      SELECT format('%s granted it to %s', quote_ident(g.rolname), quote_ident(mr.rolname))
        FROM pg_catalog.pg_auth_members m
        JOIN pg_catalog.pg_roles mr ON mr.oid = m.member
        JOIN pg_catalog.pg_roles g ON g.oid = m.grantor
       WHERE m.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r) AND NOT g.rolsuper) w;
    IF why IS NOT NULL THEN
      RAISE EXCEPTION 'pgfollow: role % exists already and is not safe to use: %', r, why
        USING HINT = 'pgfollow gives this role control of follows. Drop it, or revoke what is listed, then install again.';
    END IF;
  END LOOP;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgfollow_monitor') THEN
    CREATE ROLE pgfollow_monitor NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgfollow_admin') THEN
    CREATE ROLE pgfollow_admin NOLOGIN;
  END IF;
  IF NOT pg_catalog.pg_has_role('pgfollow_admin', 'pgfollow_monitor', 'MEMBER') THEN
    GRANT pgfollow_monitor TO pgfollow_admin;
  END IF;
END
$roles$;

-- ---------------------------------------------------------------------------------------------
-- Control and progress tables
-- ---------------------------------------------------------------------------------------------

-- What the DBA asked for. Changes only on start/stop/pause/resume/resync, so its few WAL records
-- cost nothing.
CREATE TABLE IF NOT EXISTS pgfollow.follows (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  conninfo    text NOT NULL,
  sqlite_path text,
  -- 'running', 'paused' or 'stopped'
  desired     text NOT NULL DEFAULT 'running',
  slot_name   text NOT NULL,
  publication text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Added after 0.1.0's first slice; ADD COLUMN IF NOT EXISTS keeps a reinstall harmless.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS options jsonb NOT NULL DEFAULT '{}';
-- stop_follow(id, drop_slot): whether the worker drops the slot and publication when stopping.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS drop_slot boolean NOT NULL DEFAULT true;
-- Set by resync_follow(), cleared by the worker once slot, publication and file are gone.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS resync_requested_at timestamptz;
-- Who started it, and whether that was a superuser: a follow started by another role must log in
-- to the upstream with its own password and write under the worker's data directory.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS created_by name NOT NULL DEFAULT session_user;
-- Follows from before this column were all started by superusers: they get true.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS privileged boolean NOT NULL DEFAULT true;
ALTER TABLE pgfollow.follows ALTER COLUMN privileged SET DEFAULT false;
-- Set by snapshot_follow(), cleared by the worker once the feed has been asked for a snapshot.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS snapshot_requested_at timestamptz;
ALTER TABLE pgfollow.follows DROP CONSTRAINT IF EXISTS follows_desired_check;
ALTER TABLE pgfollow.follows ADD CONSTRAINT follows_desired_check CHECK (desired IN ('running', 'paused', 'stopped'));

-- What the worker reports, many times a second when busy. UNLOGGED on purpose: it writes no WAL,
-- so a worker following this very database does not replicate its own progress to itself, and the
-- worker rewrites it after a crash empties it.
CREATE UNLOGGED TABLE IF NOT EXISTS pgfollow.follow_progress (
  id            bigint PRIMARY KEY,
  state         text NOT NULL,
  received_lsn  pg_lsn,
  applied_lsn   pg_lsn,
  acked_lsn     pg_lsn,
  applied_at    timestamptz,
  rows_applied  bigint NOT NULL DEFAULT 0,
  xacts_applied bigint NOT NULL DEFAULT 0,
  tables        integer NOT NULL DEFAULT 0,
  last_error    text,
  last_error_at timestamptz,
  worker        text,
  heartbeat_at  timestamptz
);
-- The upstream's WAL position and the WAL its slot keeps, as the worker last sampled them.
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS upstream_lsn pg_lsn;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS slot_retained_bytes bigint;
-- Last time the follower had applied everything the upstream had sent it.
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS caught_up_at timestamptz;
-- while copying: which table, rows copied of the planner's estimate, tables done
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS copy_progress text;
-- messages with the capture's prefix that failed authentication (forged): ignored, counted
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS rejected_messages bigint NOT NULL DEFAULT 0;
-- when the worker last sampled upstream_lsn; how often its heartbeat comes (worker_alive)
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS upstream_sampled_at timestamptz;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS heartbeat_interval_ms integer;
-- the error before the follow recovered (last_error is cleared once it is healthy again)
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS previous_error text;
-- true once the follower may have created a publication or slot upstream
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS upstream_touched boolean NOT NULL DEFAULT false;
-- what a stop could not drop upstream (slot, publication) and how to drop it
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS left_behind text;
-- the tables held in error while the others stream: [{oid, schema, name, since, error, at}]
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS held_tables jsonb NOT NULL DEFAULT '[]';
-- a feed's (option "feed"): last transaction JetStream acknowledged, the stream's size, the newest snapshot
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS feed_lsn pg_lsn;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS feed_seq bigint;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS stream_messages bigint;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS stream_bytes bigint;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS last_snapshot_at timestamptz;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS last_snapshot_seq bigint;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS last_snapshot_lsn pg_lsn;

REVOKE ALL ON pgfollow.follow_progress FROM PUBLIC;
REVOKE ALL ON pgfollow.follows FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Checks at the door
-- ---------------------------------------------------------------------------------------------

-- Connection strings, read with the same rules as src/upstream/conninfo.ts (test/rules.test.ts feeds
-- both the same cases): libpq's keyword = value form with its quoting, and postgres:// URIs. What
-- libpq, URL parsers and node-postgres could read differently (several hosts, '#' or a second '@'
-- in a URI) is refused. Messages never repeat a value: it could be a password.

-- libpq's keywords; with `unprivileged`, those a follow started by a role that is not a superuser
-- may use (the rest could lend it the worker's passfile, certificates, socket or session options).
CREATE OR REPLACE FUNCTION pgfollow.conninfo_keywords(unprivileged boolean DEFAULT false) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT CASE WHEN unprivileged THEN ARRAY['host','hostaddr','port','dbname','user','password',
    'connect_timeout','application_name','fallback_application_name','sslmode','keepalives',
    'keepalives_idle','keepalives_interval','keepalives_count','tcp_user_timeout']
  ELSE ARRAY['host','hostaddr','port','dbname','user','password','passfile',
    'channel_binding','connect_timeout','client_encoding','options','application_name',
    'fallback_application_name','keepalives','keepalives_idle','keepalives_interval',
    'keepalives_count','tcp_user_timeout','replication','gssencmode','sslmode','sslnegotiation',
    'requiressl','sslcompression','sslcert','sslkey','sslpassword','sslcertmode','sslrootcert',
    'sslcrl','sslcrldir','sslsni','requirepeer','ssl_min_protocol_version',
    'ssl_max_protocol_version','krbsrvname','gsslib','gssdelegation','service',
    'target_session_attrs','load_balance_hosts','require_auth','scram_client_key',
    'scram_server_key','min_protocol_version','max_protocol_version','oauth_issuer',
    'oauth_client_id','oauth_client_secret','oauth_scope'] END
$fn$;

-- %XX-decoding of one part of a URI.
CREATE OR REPLACE FUNCTION pgfollow.uri_decode(part text, what text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  out bytea := '';
  i int := 1;
  n int := length(part);
  c text;
BEGIN
  WHILE i <= n LOOP
    c := substr(part, i, 1);
    IF c = '%' THEN
      IF substr(part, i + 1, 2) !~ '^[0-9A-Fa-f]{2}$' THEN
        RAISE EXCEPTION 'pgfollow: malformed conninfo: bad percent-encoding in the URI''s %', what
          USING HINT = 'Write a literal % as %25.', ERRCODE = 'invalid_parameter_value';
      END IF;
      out := out || decode(substr(part, i + 1, 2), 'hex');
      i := i + 3;
    ELSE
      out := out || convert_to(c, 'UTF8');
      i := i + 1;
    END IF;
  END LOOP;
  RETURN convert_from(out, 'UTF8');
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
  RAISE EXCEPTION 'pgfollow: malformed conninfo: bad percent-encoding in the URI''s %', what
    USING HINT = 'Percent-encode UTF-8 bytes.', ERRCODE = 'invalid_parameter_value';
END
$fn$;

-- Every keyword = value of a conninfo in the order written (a later one overrides an earlier), with
-- where the value sits in the text: value_start is the 0-based offset of its first character,
-- value_end of the character after it (for masking).
CREATE OR REPLACE FUNCTION pgfollow.conninfo_params(conninfo text)
RETURNS TABLE (keyword text, value text, value_start int, value_end int)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  s text := coalesce(conninfo, '');
  n int := length(s);
  i int := 0;          -- 0-based, as in src/upstream/conninfo.ts
  c text;
  k text;
  v text;
  st int;
  q int; rest_end int; sl int; auth_end int; a int; colon int; h_end int; host_end int; pc int; amp int; eq int; seg_end int;
  ws constant text := '[ \t\n\r\f\v]';
BEGIN
  IF s !~ '[^ \t\n\r\f\v]' THEN
    RAISE EXCEPTION 'pgfollow: malformed conninfo: the conninfo is empty'
      USING HINT = 'Give a libpq connection string, e.g. ''host=db.example.com dbname=app user=postgres''.', ERRCODE = 'invalid_parameter_value';
  END IF;
  IF s !~* '^postgres(ql)?://' THEN
    LOOP
      WHILE i < n AND substr(s, i + 1, 1) ~ ws LOOP i := i + 1; END LOOP;
      EXIT WHEN i >= n;
      k := substring(substr(s, i + 1) FROM '^[A-Za-z_]+');
      IF k IS NULL THEN
        RAISE EXCEPTION 'pgfollow: malformed conninfo: expected a keyword at character %', i + 1
          USING HINT = 'Use keyword=value pairs separated by spaces, e.g. ''host=127.0.0.1 port=5432 dbname=app''.', ERRCODE = 'invalid_parameter_value';
      END IF;
      i := i + length(k);
      WHILE i < n AND substr(s, i + 1, 1) ~ ws LOOP i := i + 1; END LOOP;
      IF i >= n OR substr(s, i + 1, 1) <> '=' THEN
        RAISE EXCEPTION 'pgfollow: malformed conninfo: missing "=" after keyword "%"', left(k, 40)
          USING HINT = 'Write it as ' || left(k, 40) || '=value.', ERRCODE = 'invalid_parameter_value';
      END IF;
      i := i + 1;
      WHILE i < n AND substr(s, i + 1, 1) ~ ws LOOP i := i + 1; END LOOP;
      st := i;
      v := '';
      IF substr(s, i + 1, 1) = '''' THEN
        i := i + 1;
        LOOP
          IF i >= n THEN
            RAISE EXCEPTION 'pgfollow: malformed conninfo: unterminated quoted value for "%"', k
              USING HINT = 'Close the value with a single quote; write a quote inside it as \''.', ERRCODE = 'invalid_parameter_value';
          END IF;
          c := substr(s, i + 1, 1);
          IF c = '\' AND i + 1 < n THEN
            v := v || substr(s, i + 2, 1);
            i := i + 2;
            CONTINUE;
          END IF;
          i := i + 1;
          EXIT WHEN c = '''';
          v := v || c;
        END LOOP;
      ELSE
        WHILE i < n AND substr(s, i + 1, 1) !~ ws LOOP
          IF substr(s, i + 1, 1) = '\' AND i + 1 < n THEN i := i + 1; END IF;
          v := v || substr(s, i + 1, 1);
          i := i + 1;
        END LOOP;
      END IF;
      keyword := k; value := v; value_start := st; value_end := i;
      RETURN NEXT;
    END LOOP;
    RETURN;
  END IF;
  -- postgres[ql]://[user[:password]@][host][:port][/dbname][?keyword=value&...]
  IF s ~ ws THEN
    RAISE EXCEPTION 'pgfollow: malformed conninfo: the URI contains white space'
      USING HINT = 'Percent-encode spaces in a postgres:// URI, or use the keyword=value form.', ERRCODE = 'invalid_parameter_value';
  END IF;
  IF strpos(s, '#') > 0 THEN
    RAISE EXCEPTION 'pgfollow: malformed conninfo: the URI contains ''#'''
      USING HINT = 'Percent-encode it as %23.', ERRCODE = 'invalid_parameter_value';
  END IF;
  i := strpos(s, '://') + 2;
  q := CASE WHEN strpos(substr(s, i + 1), '?') = 0 THEN -1 ELSE i + strpos(substr(s, i + 1), '?') - 1 END;
  rest_end := CASE WHEN q < 0 THEN n ELSE q END;
  sl := CASE WHEN strpos(substr(s, i + 1), '/') = 0 THEN -1 ELSE i + strpos(substr(s, i + 1), '/') - 1 END;
  auth_end := CASE WHEN sl >= 0 AND sl < rest_end THEN sl ELSE rest_end END;
  -- the last '@' before auth_end
  a := CASE WHEN strpos(reverse(substr(s, 1, auth_end)), '@') = 0 THEN -1 ELSE auth_end - strpos(reverse(substr(s, 1, auth_end)), '@') END;
  IF a >= i THEN
    IF i + strpos(substr(s, i + 1), '@') - 1 <> a THEN
      RAISE EXCEPTION 'pgfollow: malformed conninfo: more than one ''@'' before the host'
        USING HINT = 'Percent-encode an ''@'' in a user name or password as %40.', ERRCODE = 'invalid_parameter_value';
    END IF;
    colon := CASE WHEN strpos(substr(s, i + 1), ':') = 0 THEN -1 ELSE i + strpos(substr(s, i + 1), ':') - 1 END;
    IF colon >= 0 AND colon < a THEN
      IF colon > i THEN
        keyword := 'user'; value := pgfollow.uri_decode(substr(s, i + 1, colon - i), 'user name'); value_start := i; value_end := colon;
        RETURN NEXT;
      END IF;
      keyword := 'password'; value := pgfollow.uri_decode(substr(s, colon + 2, a - colon - 1), 'password'); value_start := colon + 1; value_end := a;
      RETURN NEXT;
    ELSIF a > i THEN
      keyword := 'user'; value := pgfollow.uri_decode(substr(s, i + 1, a - i), 'user name'); value_start := i; value_end := a;
      RETURN NEXT;
    END IF;
    i := a + 1;
  END IF;
  IF i < auth_end THEN
    host_end := -1;
    IF substr(s, i + 1, 1) = '[' THEN
      host_end := strpos(substr(s, i + 1), ']');
      IF host_end = 0 THEN
        RAISE EXCEPTION 'pgfollow: malformed conninfo: an IPv6 address in the URI lacks its closing '']'''
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
      host_end := i + host_end;
    END IF;
    pc := CASE WHEN host_end > 0 THEN host_end ELSE i END;
    pc := CASE WHEN strpos(substr(s, pc + 1), ':') = 0 THEN -1 ELSE pc + strpos(substr(s, pc + 1), ':') - 1 END;
    h_end := CASE WHEN pc >= 0 AND pc < auth_end THEN pc ELSE auth_end END;
    IF h_end > i THEN
      keyword := 'host';
      value := CASE WHEN substr(s, i + 1, 1) = '[' THEN substr(s, i + 2, h_end - i - 2)
                    ELSE pgfollow.uri_decode(substr(s, i + 1, h_end - i), 'host') END;
      value_start := i; value_end := h_end;
      RETURN NEXT;
    END IF;
    IF h_end < auth_end THEN
      keyword := 'port'; value := pgfollow.uri_decode(substr(s, h_end + 2, auth_end - h_end - 1), 'port'); value_start := h_end + 1; value_end := auth_end;
      RETURN NEXT;
    END IF;
  END IF;
  IF auth_end < rest_end AND auth_end + 1 < rest_end THEN
    keyword := 'dbname'; value := pgfollow.uri_decode(substr(s, auth_end + 2, rest_end - auth_end - 1), 'database name');
    value_start := auth_end + 1; value_end := rest_end;
    RETURN NEXT;
  END IF;
  IF q >= 0 THEN
    i := q + 1;
    WHILE i < n LOOP
      amp := strpos(substr(s, i + 1), '&');
      seg_end := CASE WHEN amp = 0 THEN n ELSE i + amp - 1 END;
      eq := strpos(substr(s, i + 1), '=');
      eq := CASE WHEN eq = 0 THEN -1 ELSE i + eq - 1 END;
      IF eq < 0 OR eq > seg_end THEN
        RAISE EXCEPTION 'pgfollow: malformed conninfo: URI parameter "%" has no "="', substr(s, i + 1, least(seg_end - i, 40))
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
      keyword := pgfollow.uri_decode(substr(s, i + 1, eq - i), 'parameters');
      value := pgfollow.uri_decode(substr(s, eq + 2, seg_end - eq - 1), 'parameters');
      value_start := eq + 1; value_end := seg_end;
      RETURN NEXT;
      i := seg_end + 1;
    END LOOP;
  END IF;
END
$fn$;

-- Checks a conninfo at the door, so a mistake is refused when the DBA types it and not minutes later
-- in a worker log: keywords and the values libpq would refuse (src/upstream/conninfo.ts checks the same
-- again in the worker). Unless `privileged`, also what a follow started by a role that is not a
-- superuser may say (checkUnprivileged there): a TCP host, a user and its password, each keyword
-- once, none that would lend it the worker's own credentials.
CREATE OR REPLACE FUNCTION pgfollow.check_conninfo(conninfo text, privileged boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  p record;
  vals jsonb := '{}';
  seen text[] := '{}';
  host text;
BEGIN
  FOR p IN SELECT * FROM pgfollow.conninfo_params(conninfo) LOOP
    IF NOT p.keyword = ANY (pgfollow.conninfo_keywords()) THEN
      RAISE EXCEPTION 'pgfollow: invalid conninfo keyword "%"', left(p.keyword, 40)
        USING HINT = 'See "Parameter Key Words" in the libpq documentation for the valid keywords.', ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.keyword IN ('host', 'hostaddr') AND p.value !~ '\S' THEN
      RAISE EXCEPTION 'pgfollow: malformed conninfo: % is empty', p.keyword
        USING HINT = format('Give the server''s name or address, e.g. %s=db.example.com.', p.keyword), ERRCODE = 'invalid_parameter_value';
    ELSIF p.keyword IN ('host', 'hostaddr') AND strpos(p.value, ',') > 0 THEN
      RAISE EXCEPTION 'pgfollow: malformed conninfo: several hosts in % are not supported', p.keyword
        USING HINT = 'Give one host per follow.', ERRCODE = 'invalid_parameter_value';
    ELSIF p.keyword = 'port' AND (CASE WHEN p.value ~ '^[0-9]{1,5}$' THEN p.value::int NOT BETWEEN 1 AND 65535 ELSE true END) THEN
      RAISE EXCEPTION 'pgfollow: malformed conninfo: port "%" is not a port number', left(p.value, 20)
        USING HINT = 'Write it as port=5432.', ERRCODE = 'invalid_parameter_value';
    ELSIF p.keyword IN ('connect_timeout', 'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout')
          AND p.value !~ '^[0-9]{1,9}$' THEN
      RAISE EXCEPTION 'pgfollow: malformed conninfo: % "%" is not a whole number', p.keyword, left(p.value, 20)
        USING HINT = format('Write it as %s=10.', p.keyword), ERRCODE = 'invalid_parameter_value';
    ELSIF p.keyword = 'sslmode' AND p.value NOT IN ('disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full') THEN
      RAISE EXCEPTION 'pgfollow: malformed conninfo: unknown sslmode "%"', left(p.value, 20)
        USING HINT = 'sslmode is one of disable, allow, prefer, require, verify-ca, verify-full.', ERRCODE = 'invalid_parameter_value';
    END IF;
    vals := vals || jsonb_build_object(p.keyword, p.value);
  END LOOP;
  IF privileged THEN
    RETURN;
  END IF;
  FOR p IN SELECT * FROM pgfollow.conninfo_params(conninfo) LOOP
    IF NOT p.keyword = ANY (pgfollow.conninfo_keywords(true)) THEN
      RAISE EXCEPTION 'pgfollow: a follow started by a role that is not a superuser may not use the conninfo keyword "%"', p.keyword
        USING HINT = 'Leave it out; the keywords allowed are ' || array_to_string(pgfollow.conninfo_keywords(true), ', ') || '.',
              ERRCODE = 'insufficient_privilege';
    END IF;
    IF p.keyword = ANY (seen) THEN
      RAISE EXCEPTION 'pgfollow: a follow started by a role that is not a superuser may not give "%" twice', p.keyword
        USING HINT = 'Give each keyword once.', ERRCODE = 'insufficient_privilege';
    END IF;
    seen := seen || p.keyword;
  END LOOP;
  host := coalesce(vals ->> 'host', vals ->> 'hostaddr');
  IF host IS NULL OR host = '' THEN
    RAISE EXCEPTION 'pgfollow: a follow started by a role that is not a superuser must name the upstream host'
      USING HINT = 'Add host=... : the worker connects over TCP with the role''s own password.', ERRCODE = 'insufficient_privilege';
  END IF;
  IF coalesce(vals ->> 'host', '') ~ '^[/@]' OR coalesce(vals ->> 'hostaddr', '') ~ '^[/@]' THEN
    RAISE EXCEPTION 'pgfollow: a follow started by a role that is not a superuser may not connect through a Unix socket'
      USING HINT = 'Give a host name or address: a socket may let the worker in on its own credentials.', ERRCODE = 'insufficient_privilege';
  END IF;
  IF coalesce(vals ->> 'user', '') = '' THEN
    RAISE EXCEPTION 'pgfollow: a follow started by a role that is not a superuser must name the upstream role (user=...)'
      USING HINT = 'Add user=... with that role''s password.', ERRCODE = 'insufficient_privilege';
  END IF;
  IF coalesce(vals ->> 'password', '') = '' THEN
    RAISE EXCEPTION 'pgfollow: a follow started by a role that is not a superuser must give the upstream role''s password in its conninfo'
      USING HINT = 'Add password=... : the worker then logs in with that role''s own password, never with its own credentials.',
            ERRCODE = 'insufficient_privilege';
  END IF;
END
$fn$;
DROP FUNCTION IF EXISTS pgfollow.check_conninfo(text);
DROP FUNCTION IF EXISTS pgfollow.conninfo_has_password(text);

-- Passwords never leave the control table: every secret value (password, sslpassword, a URI's
-- user:password, ...) is replaced by ********, found by parsing, as maskConninfo in
-- src/upstream/conninfo.ts does. A text that does not parse is not shown at all.
CREATE OR REPLACE FUNCTION pgfollow.mask_conninfo(conninfo text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  p record;
  out text := '';
  at int := 0;
BEGIN
  IF conninfo IS NULL THEN
    RETURN NULL;
  END IF;
  FOR p IN SELECT * FROM pgfollow.conninfo_params(conninfo) LOOP
    CONTINUE WHEN p.keyword !~ '(password|secret)$' AND p.keyword NOT IN ('scram_client_key', 'scram_server_key');
    out := out || substr(conninfo, at + 1, p.value_start - at) || '********';
    at := p.value_end;
  END LOOP;
  RETURN out || substr(conninfo, at + 1);
EXCEPTION WHEN OTHERS THEN
  RETURN '(unreadable conninfo, not shown)';
END
$fn$;

-- Who is asking: the role that logged in. Inside a SECURITY DEFINER function current_user is the
-- owner, so the session user is what tells a superuser's call from another role's.
CREATE OR REPLACE FUNCTION pgfollow.caller_is_superuser() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
$fn$;

-- sqlite_path is read by the worker relative to its --data-dir. Refused everywhere: control
-- characters and ".." components. Refused unless a superuser asks: absolute paths (and even then
-- the worker writes there only when started with --allow-any-path).
CREATE OR REPLACE FUNCTION pgfollow.check_sqlite_path(sqlite_path text, privileged boolean) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF sqlite_path IS NULL THEN
    RETURN;
  END IF;
  IF sqlite_path !~ '\S' THEN
    RAISE EXCEPTION 'pgfollow: sqlite_path is empty'
      USING HINT = 'Pass NULL for the default file, or a file name such as ''app.db''.', ERRCODE = 'invalid_parameter_value';
  END IF;
  IF sqlite_path ~ '[\x01-\x1f\x7f]' THEN
    RAISE EXCEPTION 'pgfollow: sqlite_path % contains control characters', quote_literal(sqlite_path)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF '..' = ANY (regexp_split_to_array(sqlite_path, '[/\\]+')) THEN
    RAISE EXCEPTION 'pgfollow: sqlite_path % leaves the worker''s data directory ("..")', quote_literal(sqlite_path)
      USING HINT = 'Give a file name or a path relative to the worker''s --data-dir, such as ''app.db'' or ''team/app.db''.',
            ERRCODE = 'invalid_parameter_value';
  END IF;
  IF sqlite_path ~ '^([/\\~]|[A-Za-z]:)' AND NOT privileged THEN
    RAISE EXCEPTION 'pgfollow: only a superuser may give an absolute sqlite_path (%)', quote_literal(sqlite_path)
      USING HINT = 'Give a path relative to the worker''s --data-dir, such as ''app.db''.', ERRCODE = 'insufficient_privilege';
  END IF;
END
$fn$;

-- A row filter goes into the publication as WHERE (<filter>): it must be one expression that
-- cannot leave its parentheses. Same rules as checkRowFilter in src/upstream/tableset.ts, which the worker
-- applies again; the upstream then checks the expression itself.
CREATE OR REPLACE FUNCTION pgfollow.check_row_filter(tbl text, expr text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  i int := 1;
  n int := length(expr);
  c text;
  q text;
  depth int := 0;
  why text;
BEGIN
  IF expr IS NULL OR expr !~ '\S' THEN
    why := 'it is empty';
  ELSIF position('\' IN expr) > 0 THEN
    why := 'it contains a backslash';
  ELSE
    WHILE i <= n AND why IS NULL LOOP
      c := substr(expr, i, 1);
      IF q IS NOT NULL THEN
        IF c = q THEN
          IF substr(expr, i + 1, 1) = q THEN i := i + 1; ELSE q := NULL; END IF;
        END IF;
      ELSIF c IN ('''', '"') THEN q := c;
      ELSIF c = '(' THEN depth := depth + 1;
      ELSIF c = ')' THEN
        depth := depth - 1;
        IF depth < 0 THEN why := 'it closes a parenthesis it did not open'; END IF;
      ELSIF c = ';' THEN why := 'it contains ";"';
      ELSIF c = '$' THEN why := 'it contains "$"';
      ELSIF substr(expr, i, 2) IN ('--', '/*') THEN why := 'it contains a comment';
      END IF;
      i := i + 1;
    END LOOP;
    IF why IS NULL AND q IS NOT NULL THEN why := 'a quoted string or name is not closed'; END IF;
    IF why IS NULL AND depth <> 0 THEN why := 'a parenthesis is not closed'; END IF;
  END IF;
  IF why IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: the row filter for "%" is not a single SQL condition: %', tbl, why
      USING HINT = 'Write a plain condition such as region = ''eu'' AND amount > 0.', ERRCODE = 'invalid_parameter_value';
  END IF;
END
$fn$;

-- start_follow's options: {"tables": [names], "schemas": [names], "row_filters": {table: condition},
-- "feed": {...}}. Names are written as in SQL (orders, sales.orders, "Odd"."Name"); row_filters'
-- tables must be listed in "tables" too. Whether they exist is checked upstream by the worker.
-- "feed" (see pgfollow.check_feed_options) makes the follow a fan-out feed.
CREATE OR REPLACE FUNCTION pgfollow.check_options(options jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  k text;
  v jsonb;
  item jsonb;
  parts text[];
  listed text[] := '{}';
BEGIN
  IF jsonb_typeof(options) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'pgfollow: options must be a JSON object'
      USING HINT = 'For example ''{"tables": ["orders", "sales.customers"]}''.', ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR k IN SELECT jsonb_object_keys(options) LOOP
    IF k NOT IN ('tables', 'schemas', 'row_filters', 'feed', 'serve') THEN
      RAISE EXCEPTION 'pgfollow: unknown option "%"', k
        USING HINT = 'The options are "tables", "schemas", "row_filters", "feed" and "serve".', ERRCODE = 'invalid_parameter_value';
    END IF;
  END LOOP;
  IF options ? 'feed' THEN
    PERFORM pgfollow.check_feed_options(options -> 'feed');
  END IF;
  -- "serve": {"listen": "host:port"}, an IP address or localhost and a port (start_follow: superusers only).
  v := options -> 'serve';
  IF v IS NOT NULL AND (jsonb_typeof(v) <> 'object' OR (SELECT count(*) FROM jsonb_object_keys(v)) <> 1
      OR jsonb_typeof(v -> 'listen') IS DISTINCT FROM 'string'
      OR NOT (v ->> 'listen') ~ '^(localhost|[0-9]{1,3}(\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$'
      OR substring(v ->> 'listen' from ':([0-9]{1,5})$')::int NOT BETWEEN 1 AND 65535) THEN
    RAISE EXCEPTION 'pgfollow: option "serve" must be {"listen": "host:port"} with an IP address or localhost'
      USING HINT = 'For example ''{"serve": {"listen": "127.0.0.1:6433"}}''.', ERRCODE = 'invalid_parameter_value';
  END IF;
  FOREACH k IN ARRAY ARRAY['tables', 'schemas'] LOOP
    v := options -> k;
    CONTINUE WHEN v IS NULL;
    IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 THEN
      RAISE EXCEPTION 'pgfollow: option "%" must be a non-empty array of names', k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR item IN SELECT jsonb_array_elements(v) LOOP
      IF jsonb_typeof(item) <> 'string' THEN
        RAISE EXCEPTION 'pgfollow: option "%" must be a non-empty array of names', k USING ERRCODE = 'invalid_parameter_value';
      END IF;
      BEGIN
        parts := parse_ident(item #>> '{}');
      EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'pgfollow: % is not a valid name in option "%": %', item, k, SQLERRM
          USING HINT = 'Write names as in SQL: orders, sales.orders, "Odd Name".', ERRCODE = 'invalid_parameter_value';
      END;
      IF k = 'tables' AND cardinality(parts) > 2 OR k = 'schemas' AND cardinality(parts) > 1 THEN
        RAISE EXCEPTION 'pgfollow: % is not a % name', item, rtrim(k, 's')
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
      IF k = 'tables' THEN listed := listed || array_to_string(parts, '.'); END IF;
    END LOOP;
  END LOOP;
  v := options -> 'row_filters';
  IF v IS NOT NULL THEN
    IF jsonb_typeof(v) <> 'object' THEN
      RAISE EXCEPTION 'pgfollow: option "row_filters" must be an object: table name → condition' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k, item IN SELECT * FROM jsonb_each(v) LOOP
      IF jsonb_typeof(item) <> 'string' THEN
        RAISE EXCEPTION 'pgfollow: the row filter for "%" must be a string', k USING ERRCODE = 'invalid_parameter_value';
      END IF;
      BEGIN
        parts := parse_ident(k);
      EXCEPTION WHEN OTHERS THEN
        parts := NULL;
      END;
      IF parts IS NULL OR NOT array_to_string(parts, '.') = ANY (listed) THEN
        RAISE EXCEPTION 'pgfollow: row filter for "%", a table not listed in option "tables"', k
          USING HINT = 'List the table in "tables" too: a publication of all tables cannot filter rows.', ERRCODE = 'invalid_parameter_value';
      END IF;
      PERFORM pgfollow.check_row_filter(k, item #>> '{}');
    END LOOP;
  END IF;
END
$fn$;

-- The "feed" option: {"nats": "nats://host:port", "stream": "name", "snapshot_every": "10 min",
-- "max_msgs": n, "max_bytes": n, "max_age": "7 days"}, read with the same rules as
-- src/fanout/options.ts. Intervals are a number and one unit (ms, s, min, h, d and their long
-- forms), at least one second.
CREATE OR REPLACE FUNCTION pgfollow.check_feed_options(feed jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  k text;
  v jsonb;
  url text;
BEGIN
  IF jsonb_typeof(feed) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'pgfollow: option "feed" must be an object'
      USING HINT = 'For example ''{"feed": {"nats": "nats://127.0.0.1:4222", "stream": "app"}}''.', ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR k IN SELECT jsonb_object_keys(feed) LOOP
    IF k NOT IN ('nats', 'stream', 'snapshot_every', 'max_msgs', 'max_bytes', 'max_age') THEN
      RAISE EXCEPTION 'pgfollow: unknown feed option "%"', k
        USING HINT = 'The feed options are "nats", "stream", "snapshot_every", "max_msgs", "max_bytes" and "max_age".', ERRCODE = 'invalid_parameter_value';
    END IF;
  END LOOP;
  IF jsonb_typeof(feed -> 'nats') IS DISTINCT FROM 'string' OR pg_catalog.btrim(feed ->> 'nats') = '' THEN
    RAISE EXCEPTION 'pgfollow: feed option "nats" must be a URL such as nats://127.0.0.1:4222' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOREACH url IN ARRAY pg_catalog.string_to_array(feed ->> 'nats', ',') LOOP
    IF pg_catalog.btrim(url) !~ '^(nats|tls|ws|wss)://[^\s/]+(:[0-9]+)?/?$' AND pg_catalog.btrim(url) !~ '^[A-Za-z0-9.-]+:[0-9]+$' THEN
      RAISE EXCEPTION 'pgfollow: feed option "nats" is not a valid NATS URL'
        USING HINT = 'Write nats://host:port (several separated by commas).', ERRCODE = 'invalid_parameter_value';
    END IF;
  END LOOP;
  IF jsonb_typeof(feed -> 'stream') IS DISTINCT FROM 'string' OR (feed ->> 'stream') !~ '^[A-Za-z0-9_-]{1,64}$' THEN
    RAISE EXCEPTION 'pgfollow: feed option "stream" must be a name of 1 to 64 letters, digits, "_" or "-"' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOREACH k IN ARRAY ARRAY['snapshot_every', 'max_age'] LOOP
    v := feed -> k;
    CONTINUE WHEN v IS NULL;
    IF jsonb_typeof(v) <> 'string'
       OR (v #>> '{}') !~* '^\s*[0-9]+(\.[0-9]+)?\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?)\s*$'
       OR (v #>> '{}')::interval < interval '1 second' THEN
      RAISE EXCEPTION 'pgfollow: feed option "%" must be an interval of at least 1 second such as "30 s", "10 min" or "1 hour"', k
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
  END LOOP;
  FOREACH k IN ARRAY ARRAY['max_msgs', 'max_bytes'] LOOP
    v := feed -> k;
    CONTINUE WHEN v IS NULL;
    IF jsonb_typeof(v) <> 'number' OR (v #>> '{}') !~ '^[1-9][0-9]{0,15}$' THEN
      RAISE EXCEPTION 'pgfollow: feed option "%" must be a positive whole number', k USING ERRCODE = 'invalid_parameter_value';
    END IF;
  END LOOP;
END
$fn$;

-- True when a conninfo points at this very database (the usual case): then start_follow can check
-- a follow's options against the tables themselves, at once.
CREATE OR REPLACE FUNCTION pgfollow.conninfo_is_here(conninfo text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  v jsonb := '{}';
  p record;
  host text;
BEGIN
  FOR p IN SELECT * FROM pgfollow.conninfo_params(conninfo) LOOP
    v := v || jsonb_build_object(p.keyword, p.value);
  END LOOP;
  host := coalesce(v ->> 'host', v ->> 'hostaddr', '');
  RETURN (host IN ('', 'localhost', '127.0.0.1', '::1') OR host ~ '^/' OR host = host(inet_server_addr()))
     AND coalesce(v ->> 'port', '5432') = current_setting('port')
     AND coalesce(v ->> 'dbname', v ->> 'user', session_user::text) = current_database();
END
$fn$;

-- Checks a follow's options against this database when it is the follow's upstream, as the worker
-- would when creating the publication, so that a missing table, a row filter Postgres refuses or a
-- table set the upstream role may not publish is refused when typed (with the worker's error code
-- and words). An upstream elsewhere is checked by the worker when the follow starts.
CREATE OR REPLACE FUNCTION pgfollow.check_options_here(conninfo text, options jsonb, privileged boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  who text;
  who_super boolean;
  name text;
  parts text[];
  rel record;
  items text[] := '{}';
  filters jsonb := coalesce(options -> 'row_filters', '{}');
  k text;
  f text;
BEGIN
  IF NOT pgfollow.conninfo_is_here(conninfo) THEN
    RETURN;
  END IF;
  SELECT value INTO who FROM pgfollow.conninfo_params(conninfo) WHERE keyword = 'user' ORDER BY value_start DESC LIMIT 1;
  who := coalesce(who, session_user::text);
  SELECT r.rolsuper INTO who_super FROM pg_roles r WHERE r.rolname = who;
  IF (current_setting('server_version_num')::int < 150000) AND (options ? 'schemas' OR options ? 'row_filters') THEN
    RAISE EXCEPTION 'pgfollow: BAD_OPTIONS: option "%" needs Postgres 15 or newer upstream (it runs %)',
          CASE WHEN options ? 'schemas' THEN 'schemas' ELSE 'row_filters' END, current_setting('server_version_num')::int / 10000
      USING HINT = 'List the tables in option "tables" instead, without row filters.', ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NOT coalesce(who_super, false) AND (NOT options ? 'tables' OR options ? 'schemas') THEN
    RAISE EXCEPTION 'pgfollow: PRIVILEGE: the upstream role "%" is not a superuser: a publication of all tables or of whole schemas needs one', who
      USING HINT = 'List the tables to follow in option "tables" (tables the role owns), or have the follow log in as a superuser.',
            ERRCODE = 'insufficient_privilege';
  END IF;
  FOR name IN SELECT jsonb_array_elements_text(coalesce(options -> 'tables', '[]')) LOOP
    parts := parse_ident(name);
    IF cardinality(parts) = 1 THEN parts := ARRAY['public'] || parts; END IF;
    SELECT c.oid, c.relkind, c.relowner, format('%I.%I', n.nspname, c.relname) AS qname,
           CASE WHEN c.relispartition THEN pg_partition_root(c.oid)::regclass::text END AS root INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = parts[1] AND c.relname = parts[2];
    IF NOT FOUND THEN
      RAISE EXCEPTION 'pgfollow: BAD_OPTIONS: table "%" named in the follow''s options does not exist upstream', name
        USING HINT = 'Create it first, or leave it out of option "tables" (a name without a schema is in public).', ERRCODE = 'undefined_table';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
      RAISE EXCEPTION 'pgfollow: BAD_OPTIONS: "%" is not a table', name USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT coalesce(who_super, false) AND NOT pg_has_role(who, rel.relowner, 'USAGE') THEN
      RAISE EXCEPTION 'pgfollow: PRIVILEGE: the upstream role "%" does not own table %: a publication may only list tables its creator owns', who, rel.qname
        USING HINT = 'Follow tables that role owns, or have the follow log in as their owner or a superuser.', ERRCODE = 'insufficient_privilege';
    END IF;
    IF rel.root IS NOT NULL THEN
      RAISE EXCEPTION 'pgfollow: BAD_OPTIONS: "%" is a partition of %: a follow mirrors a partitioned table whole', name, rel.root
        USING HINT = format('List %s instead.', rel.root), ERRCODE = 'invalid_parameter_value';
    END IF;
    f := NULL;
    FOR k IN SELECT jsonb_object_keys(filters) LOOP
      IF parse_ident(k) = parse_ident(name) THEN f := filters ->> k; END IF;
    END LOOP;
    IF f IS NOT NULL AND rel.relkind = 'p' THEN
      RAISE EXCEPTION 'pgfollow: BAD_OPTIONS: the row filter for "%" is on a partitioned table, which pgfollow does not filter', name
        USING HINT = 'Filter the rows of a table that is not partitioned, or follow the partitioned table whole.', ERRCODE = 'invalid_parameter_value';
    END IF;
    items := items || (format('TABLE %s', rel.qname) || CASE WHEN f IS NULL THEN '' ELSE format(' WHERE (%s)', f) END);
  END LOOP;
  FOR name IN SELECT jsonb_array_elements_text(coalesce(options -> 'schemas', '[]')) LOOP
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = (parse_ident(name))[1]) THEN
      RAISE EXCEPTION 'pgfollow: BAD_OPTIONS: schema "%" named in the follow''s options does not exist upstream', name
        USING HINT = 'Create it first, or leave it out of option "schemas".', ERRCODE = 'invalid_schema_name';
    END IF;
    items := items || format('TABLES IN SCHEMA %I', (parse_ident(name))[1]);
  END LOOP;
  IF NOT coalesce(who_super, false) AND NOT has_database_privilege(who, current_database(), 'CREATE') THEN
    RAISE EXCEPTION 'pgfollow: PRIVILEGE: the upstream role "%" may not create the follow''s publication: it lacks CREATE on database %', who, current_database()
      USING HINT = format('GRANT CREATE ON DATABASE %I TO %I', current_database(), who), ERRCODE = 'insufficient_privilege';
  END IF;
  IF cardinality(items) = 0 OR filters = '{}' THEN
    RETURN;
  END IF;
  -- Row filters: Postgres decides what it accepts (simple expressions, built-in immutable functions,
  -- replica identity columns, types that compare); a publication made and rolled back at once asks it.
  BEGIN
    EXECUTE format('CREATE PUBLICATION %I FOR %s', 'pgfollow_check_' || pg_backend_pid(), array_to_string(items, ', '));
    RAISE EXCEPTION USING ERRCODE = 'PF001', MESSAGE = 'accepted';
  EXCEPTION WHEN OTHERS THEN
    IF SQLSTATE = 'PF001' THEN
      RETURN;
    END IF;
    RAISE EXCEPTION 'pgfollow: BAD_OPTIONS: the follow''s options are refused upstream: %', SQLERRM
      USING HINT = 'Fix the row filter: a plain condition on the table''s columns, with built-in operators and functions.',
            ERRCODE = 'invalid_parameter_value';
  END;
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.check_options_here(text, jsonb, boolean) FROM PUBLIC;

-- A name unique to this control database, so two control databases following one upstream never
-- share a slot: pgfollow_<id>_<8 hex digits of this cluster's system identifier and database>.
CREATE OR REPLACE FUNCTION pgfollow.object_name(follow_id bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT format('pgfollow_%s_%s', follow_id,
                left(md5((SELECT system_identifier::text FROM pg_control_system()) || '/' || current_database()), 8))
$fn$;

-- ---------------------------------------------------------------------------------------------
-- Driving follows
-- ---------------------------------------------------------------------------------------------

-- Signatures of an earlier install that the ones below replace.
DROP FUNCTION IF EXISTS public.start_follow(text, text);
DROP FUNCTION IF EXISTS public.stop_follow(bigint);
DROP FUNCTION IF EXISTS pgfollow.start_follow(text, text);
DROP FUNCTION IF EXISTS pgfollow.stop_follow(bigint);

CREATE OR REPLACE FUNCTION pgfollow.start_follow(conninfo text, sqlite_path text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  new_id bigint;
  privileged boolean := pgfollow.caller_is_superuser();
  other bigint;
BEGIN
  PERFORM pgfollow.check_conninfo(conninfo, privileged);
  PERFORM pgfollow.check_sqlite_path(sqlite_path, privileged);
  options := coalesce(options, '{}');
  PERFORM pgfollow.check_options(options);
  IF options ? 'serve' AND NOT privileged THEN
    RAISE EXCEPTION 'pgfollow: PRIVILEGE: only a superuser may start a follow with option "serve" (the worker would listen on a network address)'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  PERFORM pgfollow.check_options_here(conninfo, options, privileged);
  new_id := nextval(pg_get_serial_sequence('pgfollow.follows', 'id'));
  -- Two followers writing one file would corrupt it.
  other := pgfollow.path_taken(new_id, sqlite_path);
  IF other IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: follow % already writes the file %', other, quote_literal(coalesce(sqlite_path, format('follow_%s.db', new_id)))
      USING HINT = 'Give another sqlite_path, or stop that follow first.', ERRCODE = 'duplicate_object';
  END IF;
  INSERT INTO pgfollow.follows (id, conninfo, sqlite_path, options, slot_name, publication, created_by, privileged)
    OVERRIDING SYSTEM VALUE
    VALUES (new_id, conninfo, sqlite_path, options, pgfollow.object_name(new_id), pgfollow.object_name(new_id),
            session_user, privileged);
  PERFORM pg_notify('pgfollow', new_id::text);
  RETURN new_id;
END
$fn$;

-- A sqlite_path as the worker will read it: '.' components and repeated or trailing '/' make no
-- difference (the worker resolves the path for real, symbolic links included, and checks again).
CREATE OR REPLACE FUNCTION pgfollow.canonical_path(follow_id bigint, sqlite_path text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT CASE WHEN p ~ '^/' THEN '/' ELSE '' END
         || array_to_string(array_remove(array_remove(regexp_split_to_array(p, '/+'), '.'), ''), '/')
    FROM (SELECT coalesce(sqlite_path, format('follow_%s.db', follow_id)) AS p) x
$fn$;

-- Another follow (not stopped) that writes the file follow `follow_id` would write, or NULL.
CREATE OR REPLACE FUNCTION pgfollow.path_taken(follow_id bigint, sqlite_path text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT f.id FROM pgfollow.follows f
   WHERE f.desired <> 'stopped' AND f.id <> $1
     AND pgfollow.canonical_path(f.id, f.sqlite_path) = pgfollow.canonical_path($1, $2)
   ORDER BY f.id LIMIT 1
$fn$;
REVOKE ALL ON FUNCTION pgfollow.path_taken(bigint, text) FROM PUBLIC;

-- The row of a follow, locked; a clear error when there is none.
CREATE OR REPLACE FUNCTION pgfollow.follow_row(follow_id bigint) RETURNS pgfollow.follows
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows;
BEGIN
  SELECT * INTO r FROM pgfollow.follows f WHERE f.id = follow_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pgfollow: no follow with id %', follow_id
      USING HINT = 'SELECT * FROM pgfollow.follow_status lists the follows.', ERRCODE = 'no_data_found';
  END IF;
  RETURN r;
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.follow_row(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION pgfollow.stop_follow(id bigint, drop_slot boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows := pgfollow.follow_row(id);
BEGIN
  UPDATE pgfollow.follows f SET desired = 'stopped', drop_slot = coalesce(stop_follow.drop_slot, true),
         resync_requested_at = NULL, updated_at = now()
   WHERE f.id = r.id;
  -- Stopped earlier with its slot kept, or with a slot left behind on an unreachable upstream,
  -- and now asked to drop it: a worker (re)tries.
  IF r.desired = 'stopped' AND coalesce(stop_follow.drop_slot, true)
     AND (NOT r.drop_slot OR EXISTS (SELECT FROM pgfollow.follow_progress p WHERE p.id = r.id AND p.left_behind IS NOT NULL)) THEN
    UPDATE pgfollow.follow_progress p SET state = 'stopping' WHERE p.id = r.id;
  END IF;
  PERFORM pg_notify('pgfollow', r.id::text);
END
$fn$;

-- Pausing stops streaming; the follow's persistent slot keeps every change (and the WAL holding
-- them) until resume_follow().
CREATE OR REPLACE FUNCTION pgfollow.pause_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows := pgfollow.follow_row(id);
BEGIN
  IF r.desired = 'stopped' THEN
    RAISE EXCEPTION 'pgfollow: follow % is stopped', r.id
      USING HINT = 'A stopped follow cannot be paused; start a new one with start_follow().', ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  UPDATE pgfollow.follows f SET desired = 'paused', updated_at = now() WHERE f.id = r.id AND f.desired <> 'paused';
  PERFORM pg_notify('pgfollow', r.id::text);
END
$fn$;

CREATE OR REPLACE FUNCTION pgfollow.resume_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows := pgfollow.follow_row(id);
BEGIN
  IF r.desired = 'stopped' THEN
    RAISE EXCEPTION 'pgfollow: follow % is stopped', r.id
      USING HINT = 'A stopped follow cannot be resumed; start a new one with start_follow().', ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  UPDATE pgfollow.follows f SET desired = 'running', updated_at = now() WHERE f.id = r.id AND f.desired <> 'running';
  PERFORM pg_notify('pgfollow', r.id::text);
END
$fn$;

-- Starts the follow over: the worker drops its slot and publication, deletes the SQLite file and
-- copies everything again. A paused follow stays paused (and copies when resumed).
CREATE OR REPLACE FUNCTION pgfollow.resync_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows := pgfollow.follow_row(id);
  other bigint;
BEGIN
  IF r.desired = 'stopped' THEN
    RAISE EXCEPTION 'pgfollow: follow % is stopped', r.id
      USING HINT = 'Start a new follow with start_follow() instead.', ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  -- A resync deletes the file: never one another follow writes.
  other := pgfollow.path_taken(r.id, r.sqlite_path);
  IF other IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: follow % writes the same file as follow % (%)', r.id, other, quote_literal(pgfollow.canonical_path(r.id, r.sqlite_path))
      USING HINT = 'Stop one of them first: a resync deletes the file.', ERRCODE = 'duplicate_object';
  END IF;
  UPDATE pgfollow.follows f SET resync_requested_at = clock_timestamp(), updated_at = now() WHERE f.id = r.id;
  PERFORM pg_notify('pgfollow', r.id::text);
END
$fn$;

-- Asks a feed (a follow with option "feed") to publish a snapshot now: its worker takes it at the
-- next moment the file is between commits. follow_status.last_snapshot_at says when it is done.
CREATE OR REPLACE FUNCTION pgfollow.snapshot_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows := pgfollow.follow_row(id);
BEGIN
  IF NOT r.options ? 'feed' THEN
    RAISE EXCEPTION 'pgfollow: follow % is not a feed', r.id
      USING HINT = 'Snapshots are of feeds: start_follow(conninfo, NULL, ''{"feed": {"nats": "nats://host:4222", "stream": "app"}}'').', ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF r.desired <> 'running' THEN
    RAISE EXCEPTION 'pgfollow: follow % is %', r.id, r.desired
      USING HINT = 'Resume it first: only a running feed publishes snapshots.', ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  UPDATE pgfollow.follows f SET snapshot_requested_at = clock_timestamp(), updated_at = now() WHERE f.id = r.id;
  PERFORM pg_notify('pgfollow', r.id::text);
END
$fn$;

-- Forgets a stopped follow. Its SQLite file stays where it is.
CREATE OR REPLACE FUNCTION pgfollow.remove_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows := pgfollow.follow_row(id);
  st text;
BEGIN
  SELECT p.state INTO st FROM pgfollow.follow_progress p WHERE p.id = r.id;
  IF r.desired <> 'stopped' OR st IS DISTINCT FROM 'stopped' AND st IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: follow % is not stopped yet', r.id
      USING HINT = format('Run SELECT stop_follow(%s), and remove it once follow_status says stopped.', r.id),
            ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  SELECT p.left_behind INTO st FROM pgfollow.follow_progress p WHERE p.id = r.id;
  IF st IS NOT NULL THEN
    RAISE WARNING 'pgfollow: follow % left behind %', r.id, st;
  END IF;
  DELETE FROM pgfollow.follow_progress p WHERE p.id = r.id;
  DELETE FROM pgfollow.follows f WHERE f.id = r.id;
END
$fn$;

-- Returns once the follow's SQLite file holds everything committed up to `lsn` (by default: up to
-- now, i.e. the caller's own committed writes): read-your-writes for psql and applications. Raises
-- when `timeout` passes first, or at once when the follow is paused or stopped.
-- The position reached is read from follow_progress and, when the follow's slot lives in this
-- cluster, from the slot's confirmed position, which moves the moment the follower acknowledges.
-- Each statement of the loop sees the latest commits (READ COMMITTED); sleeps are short.
-- `lsn` is a position of the upstream's WAL: the default is right when this database is the
-- upstream (or in the same cluster); otherwise pass pg_current_wal_lsn() read on the upstream.
CREATE OR REPLACE FUNCTION pgfollow.wait_for_follow(id bigint, lsn pg_lsn DEFAULT pg_current_wal_lsn(), timeout interval DEFAULT '1 minute')
RETURNS pg_lsn LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  deadline timestamptz := clock_timestamp() + coalesce(timeout, interval '1 minute');
  nap float8 := 0.001;
  f record;
  reached pg_lsn;
BEGIN
  IF lsn IS NULL THEN
    RAISE EXCEPTION 'pgfollow: wait_for_follow needs a position, got NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF current_setting('transaction_isolation') IN ('repeatable read', 'serializable') THEN
    RAISE EXCEPTION 'pgfollow: wait_for_follow cannot see progress from a % transaction', current_setting('transaction_isolation')
      USING HINT = 'Call it outside the transaction, or in a READ COMMITTED one.', ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  LOOP
    SELECT fl.desired, fl.resync_requested_at, p.state, p.applied_lsn, p.acked_lsn, p.last_error, s.confirmed_flush_lsn
      INTO f
      FROM pgfollow.follows fl
      LEFT JOIN pgfollow.follow_progress p ON p.id = fl.id
      LEFT JOIN pg_replication_slots s ON s.slot_name = fl.slot_name AND s.slot_type = 'logical' AND p.state = 'streaming'
     WHERE fl.id = wait_for_follow.id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'pgfollow: no follow with id %', id
        USING HINT = 'SELECT * FROM pgfollow.follow_status lists the follows.', ERRCODE = 'no_data_found';
    END IF;
    IF f.resync_requested_at IS NULL AND f.state IS DISTINCT FROM 'copying' AND f.state IS DISTINCT FROM 'starting' THEN
      reached := greatest(f.applied_lsn, f.acked_lsn, f.confirmed_flush_lsn);
      IF reached >= lsn THEN
        RETURN reached;
      END IF;
    END IF;
    IF f.desired <> 'running' THEN
      RAISE EXCEPTION 'pgfollow: follow % is %: it applies nothing until %', id, f.desired,
            CASE f.desired WHEN 'paused' THEN format('resume_follow(%s)', id) ELSE 'a new follow is started' END
        USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF clock_timestamp() >= deadline THEN
      RAISE EXCEPTION 'pgfollow: follow % has not applied % within % (state %, applied %)', id, lsn, coalesce(timeout, interval '1 minute'),
            coalesce(f.state, 'requested'), coalesce(reached::text, 'nothing')
        USING DETAIL = coalesce('last error: ' || f.last_error, 'no error reported'),
              HINT = 'SELECT * FROM pgfollow.follow_status WHERE id = ' || id || ' shows what the follow is doing.',
              ERRCODE = 'query_canceled';
    END IF;
    PERFORM pg_sleep(nap);
    nap := least(nap * 2, 0.02);
  END LOOP;
END
$fn$;

-- ---------------------------------------------------------------------------------------------
-- Watching
-- ---------------------------------------------------------------------------------------------

-- Dropped and created again (not replaced) because its columns changed since 0.1.0's first slice.
DROP VIEW IF EXISTS pgfollow.follow_status;
-- Positions come from the worker's reports; when the follow's slot lives in this cluster (the
-- usual case: this database is the upstream), the upstream's WAL position, the confirmed position
-- and the WAL the slot retains are read live from it instead. What is not known fresh is NULL,
-- never 0: for an upstream elsewhere, lag needs a sample of its WAL position that the worker took
-- within the last three heartbeat intervals while streaming (lag_sampled_at says when).
-- lag_bytes: upstream WAL not yet applied; lag_seconds: while behind, the age of the newest
-- applied commit or of the last moment the follow was known caught up, whichever is younger.
-- worker_alive: whether the worker running the follow has reported within three of its heartbeat
-- intervals; a follow whose worker went silent reads state 'worker_lost' until one takes it over.
CREATE VIEW pgfollow.follow_status AS
SELECT f.id,
       CASE
         WHEN f.desired = 'stopped' THEN CASE WHEN p.state = 'stopped' THEN 'stopped' ELSE 'stopping' END
         WHEN f.resync_requested_at IS NOT NULL THEN 'resyncing'
         WHEN f.desired = 'paused' THEN CASE WHEN p.state IS NULL OR p.state = 'paused' THEN 'paused' ELSE 'pausing' END
         WHEN p.state IS NOT NULL AND NOT w.alive THEN 'worker_lost'
         ELSE coalesce(p.state, 'requested')
       END AS state,
       pgfollow.mask_conninfo(f.conninfo) AS upstream,
       coalesce(f.sqlite_path, format('follow_%s.db', f.id)) AS sqlite_path,
       -- A feed's NATS URL may carry a user and password: masked like conninfo.
       CASE WHEN f.options -> 'feed' ->> 'nats' ~ '//[^@/]*@'
            THEN jsonb_set(f.options, '{feed,nats}', to_jsonb(regexp_replace(f.options -> 'feed' ->> 'nats', '//[^@/]*@', '//***@', 'g')))
            ELSE f.options END AS options,
       p.received_lsn,
       p.applied_lsn,
       p.acked_lsn,
       pos.upstream_lsn,
       CASE WHEN f.desired <> 'stopped' AND pos.upstream_lsn IS NOT NULL AND pos.done_lsn IS NOT NULL
            THEN greatest(0, pg_wal_lsn_diff(pos.upstream_lsn, pos.done_lsn))::bigint END AS lag_bytes,
       CASE
         WHEN f.desired = 'stopped' OR pos.upstream_lsn IS NULL OR pos.done_lsn IS NULL THEN NULL
         WHEN pos.done_lsn >= pos.upstream_lsn THEN 0
         ELSE round(extract(epoch FROM now() - greatest(p.applied_at, p.caught_up_at))::numeric, 3)
       END AS lag_seconds,
       CASE WHEN ls.restart_lsn IS NOT NULL THEN now() ELSE p.upstream_sampled_at END AS lag_sampled_at,
       p.applied_at,
       coalesce(p.rows_applied, 0) AS rows_applied,
       coalesce(p.xacts_applied, 0) AS xacts_applied,
       coalesce(p.tables, 0) AS tables,
       CASE WHEN p.state = 'copying' THEN p.copy_progress END AS copy_progress,
       coalesce(p.rejected_messages, 0) AS rejected_messages,
       p.last_error,
       p.last_error_at,
       p.previous_error,
       p.left_behind,
       f.slot_name,
       CASE WHEN ls.restart_lsn IS NOT NULL THEN pg_wal_lsn_diff(pos.here_lsn, ls.restart_lsn)::bigint
            WHEN f.desired <> 'stopped' THEN p.slot_retained_bytes END AS slot_retained_bytes,
       p.worker,
       CASE WHEN f.desired = 'running' AND p.state IS NOT NULL THEN w.alive END AS worker_alive,
       p.heartbeat_at,
       f.created_by,
       f.created_at,
       f.options -> 'feed' ->> 'stream' AS feed_stream,
       p.feed_lsn,
       p.feed_seq,
       p.stream_messages,
       p.stream_bytes,
       p.last_snapshot_at,
       p.last_snapshot_seq,
       p.last_snapshot_lsn
  FROM pgfollow.follows f
  LEFT JOIN pgfollow.follow_progress p ON p.id = f.id
  LEFT JOIN LATERAL (
    SELECT s.restart_lsn, s.confirmed_flush_lsn FROM pg_replication_slots s
     WHERE s.slot_name = f.slot_name AND s.slot_type = 'logical') ls ON true
  CROSS JOIN LATERAL (
    SELECT coalesce(p.heartbeat_at > now() - 3 * greatest(coalesce(p.heartbeat_interval_ms, 5000), 1000) * interval '1 millisecond', false) AS alive,
           p.state = 'streaming' AND p.upstream_sampled_at > now() - 3 * greatest(coalesce(p.heartbeat_interval_ms, 5000), 1000) * interval '1 millisecond' AS fresh) w
  CROSS JOIN LATERAL (
    SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS here_lsn) h
  CROSS JOIN LATERAL (
    SELECT h.here_lsn,
           CASE WHEN ls.restart_lsn IS NOT NULL THEN h.here_lsn
                WHEN w.fresh AND w.alive THEN greatest(p.upstream_lsn, p.received_lsn) END AS upstream_lsn,
           greatest(p.applied_lsn, p.acked_lsn, CASE WHEN p.state = 'streaming' THEN ls.confirmed_flush_lsn END) AS done_lsn) pos;

-- One row per table of a follow held in error (what it could not apply, since which upstream
-- transaction): the other tables stream on; the table comes back once its whole content arrives
-- again (a rewrite, or pgfollow.reload_table() on the upstream, which the follower asks for itself
-- once the table's description applies again).
DROP VIEW IF EXISTS pgfollow.follow_tables;
CREATE VIEW pgfollow.follow_tables AS
SELECT p.id AS follow, (h ->> 'oid')::bigint AS table_oid, h ->> 'schema' AS schema_name, h ->> 'name' AS table_name,
       'error'::text AS state, (h ->> 'since')::pg_lsn AS since_lsn, h ->> 'error' AS last_error, (h ->> 'at')::timestamptz AS held_at
  FROM pgfollow.follow_progress p CROSS JOIN LATERAL jsonb_array_elements(p.held_tables) h
 WHERE EXISTS (SELECT FROM pgfollow.follows f WHERE f.id = p.id AND f.desired <> 'stopped');

-- ---------------------------------------------------------------------------------------------
-- Calling it from psql, unqualified
-- ---------------------------------------------------------------------------------------------

-- Thin wrappers in public, as the DBA types the calls. A function of the same name that another
-- role creates could be picked instead of these (a better-matching overload), and would then run
-- with the caller's privileges: install refuses to go ahead when such functions exist, and the
-- event trigger pgfollow_guard refuses their creation later on.
-- The names of the wrappers below: what no role but a superuser may name a function, anywhere.
CREATE OR REPLACE FUNCTION pgfollow.wrapper_names() RETURNS name[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT ARRAY['start_follow', 'stop_follow', 'pause_follow', 'resume_follow', 'resync_follow', 'remove_follow', 'wait_for_follow',
               'snapshot_follow']::name[]
$fn$;

DO $foreign$
DECLARE
  f text;
BEGIN
  SELECT string_agg(p.oid::regprocedure::text || ' owned by ' || quote_ident(r.rolname), ', ') INTO f
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
   WHERE p.proname = ANY (pgfollow.wrapper_names())
     AND p.pronamespace <> 'pgfollow'::regnamespace AND NOT r.rolsuper;
  IF f IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: functions named like pgfollow''s exist already: %', f
      USING HINT = 'A DBA calling start_follow() unqualified could run one of them instead of pgfollow''s. Drop them, then install again.';
  END IF;
  IF has_schema_privilege('public', 'public', 'CREATE') THEN
    RAISE WARNING 'pgfollow: every role may create objects in schema public of this database'
      USING HINT = 'REVOKE CREATE ON SCHEMA public FROM PUBLIC, as Postgres 15 does by default; until then, prefer schema-qualified calls (pgfollow.start_follow).';
  END IF;
END
$foreign$;

CREATE OR REPLACE FUNCTION public.start_follow(conninfo text, sqlite_path text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.start_follow(conninfo, sqlite_path, options) $fn$;
CREATE OR REPLACE FUNCTION public.stop_follow(id bigint, drop_slot boolean DEFAULT true) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.stop_follow(id, drop_slot) $fn$;
CREATE OR REPLACE FUNCTION public.pause_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.pause_follow(id) $fn$;
CREATE OR REPLACE FUNCTION public.resume_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.resume_follow(id) $fn$;
CREATE OR REPLACE FUNCTION public.resync_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.resync_follow(id) $fn$;
CREATE OR REPLACE FUNCTION public.remove_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.remove_follow(id) $fn$;
CREATE OR REPLACE FUNCTION public.wait_for_follow(id bigint, lsn pg_lsn DEFAULT pg_current_wal_lsn(), timeout interval DEFAULT '1 minute')
RETURNS pg_lsn LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.wait_for_follow(id, lsn, timeout) $fn$;
CREATE OR REPLACE FUNCTION public.snapshot_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.snapshot_follow(id) $fn$;

-- Refuses functions that would shadow the wrappers above, whoever creates them later: only a
-- superuser may create or rename a function to one of these names outside schema pgfollow. Not
-- SECURITY DEFINER: current_user must be the role running the DDL.
CREATE OR REPLACE FUNCTION pgfollow.on_function_ddl() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  f text;
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN;
  END IF;
  SELECT string_agg(p.oid::regprocedure::text, ', ') INTO f
    FROM pg_event_trigger_ddl_commands() c JOIN pg_proc p ON c.classid = 'pg_proc'::regclass AND p.oid = c.objid
   WHERE p.proname = ANY (pgfollow.wrapper_names())
     AND p.pronamespace <> 'pgfollow'::regnamespace;
  IF f IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: only a superuser may create %: psql users calling pgfollow''s functions unqualified could run it instead', f
      USING HINT = 'Choose another name.', ERRCODE = 'insufficient_privilege';
  END IF;
END
$fn$;
DROP EVENT TRIGGER IF EXISTS pgfollow_guard;
-- Every command, not a list of tags: functions, procedures and aggregates get their names from
-- CREATE and ALTER of each kind, ALTER ROUTINE, ALTER EXTENSION ... ADD and more.
CREATE EVENT TRIGGER pgfollow_guard ON ddl_command_end
  EXECUTE FUNCTION pgfollow.on_function_ddl();
-- In every session, session_replication_role = replica included.
ALTER EVENT TRIGGER pgfollow_guard ENABLE ALWAYS;

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION pgfollow.start_follow(text, text, jsonb), pgfollow.stop_follow(bigint, boolean),
  pgfollow.pause_follow(bigint), pgfollow.resume_follow(bigint), pgfollow.resync_follow(bigint),
  pgfollow.remove_follow(bigint), pgfollow.wait_for_follow(bigint, pg_lsn, interval), pgfollow.snapshot_follow(bigint),
  public.start_follow(text, text, jsonb), public.stop_follow(bigint, boolean),
  public.pause_follow(bigint), public.resume_follow(bigint), public.resync_follow(bigint),
  public.remove_follow(bigint), public.wait_for_follow(bigint, pg_lsn, interval), public.snapshot_follow(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgfollow.start_follow(text, text, jsonb), pgfollow.stop_follow(bigint, boolean),
  pgfollow.pause_follow(bigint), pgfollow.resume_follow(bigint), pgfollow.resync_follow(bigint),
  pgfollow.remove_follow(bigint), pgfollow.snapshot_follow(bigint),
  public.start_follow(text, text, jsonb), public.stop_follow(bigint, boolean),
  public.pause_follow(bigint), public.resume_follow(bigint), public.resync_follow(bigint),
  public.remove_follow(bigint), public.snapshot_follow(bigint) TO pgfollow_admin;
GRANT EXECUTE ON FUNCTION pgfollow.wait_for_follow(bigint, pg_lsn, interval), public.wait_for_follow(bigint, pg_lsn, interval)
  TO pgfollow_monitor;
REVOKE ALL ON pgfollow.follow_status FROM PUBLIC;
GRANT SELECT ON pgfollow.follow_status TO pgfollow_monitor;
GRANT SELECT ON pgfollow.follow_tables TO pgfollow_monitor;
