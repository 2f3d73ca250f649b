-- pgfollow extension script, version 0.1.0.
-- Generated from sql/install.sql by `pgfollow extension-files --out sql/extension`: edit that file
-- and the files it includes, not this one.
\echo Use "CREATE EXTENSION pgfollow" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;
DO $ext$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') THEN
    RAISE EXCEPTION 'pgfollow is installed in this database with install.sql already'
      USING HINT = 'Keep using install.sql, or remove it with sql/uninstall.sql (which ends every follow) before CREATE EXTENSION pgfollow.';
  END IF;
END
$ext$;

-- pgfollow install script.
--
-- Puts into this database, in schema "pgfollow":
--   * the DDL capture: event triggers that describe every changed table from the catalogs and
--     emit the description with pg_logical_emit_message(true, 'pgfollow', ...), so it travels in
--     the same transaction as the rows around it;
--   * the control plane: roles pgfollow_admin and pgfollow_monitor, table pgfollow.follows,
--     start_follow() / stop_follow() / pause_follow() / resume_follow() / resync_follow() /
--     remove_follow() / wait_for_follow() (also callable unqualified, from public), and the view
--     pgfollow.follow_status.
--
-- Re-runnable: installing twice is harmless and keeps existing follows. All or nothing: it runs in
-- one transaction. Must be run by a superuser (event triggers and pg_logical_emit_message need it).
-- The same objects make up the extension (CREATE EXTENSION pgfollow): sql/extension/ holds its
-- script, generated from this file by `pgfollow extension-files`, without the parts marked
-- "plain install only".


-- Everything below runs as a superuser: no name in it may resolve to an object another role
-- created (a function or operator in public that matches argument types better than the
-- built-in one would run with the installer's rights). Until the transaction ends:
SET LOCAL search_path = pg_catalog, pg_temp;

DO $check$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION 'pgfollow: install.sql must be run by a superuser (current user "%" is not)', current_user
      USING HINT = 'Connect as a superuser, e.g. psql -U postgres, and run \i sql/install.sql again.';
  END IF;
END
$check$;


-- Schema pgfollow holds SECURITY DEFINER functions: it, and everything in it, must belong to
-- superusers. One that another role created beforehand (or objects it put there) is refused.
DO $owner$
DECLARE
  what text;
BEGIN
  SELECT string_agg(x, ', ') INTO what FROM (
    SELECT format('schema pgfollow (owned by %s)', quote_ident(r.rolname)) AS x
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
     WHERE n.nspname = 'pgfollow' AND NOT r.rolsuper
    UNION ALL
    SELECT format('%s (owned by %s)', c.oid::regclass, quote_ident(r.rolname))
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
     WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') AND NOT r.rolsuper
    UNION ALL
    SELECT format('%s (owned by %s)', p.oid::regprocedure, quote_ident(r.rolname))
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
     WHERE p.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') AND NOT r.rolsuper
    UNION ALL
    SELECT format('type %s (owned by %s)', t.oid::regtype, quote_ident(r.rolname))
      FROM pg_catalog.pg_type t JOIN pg_catalog.pg_roles r ON r.oid = t.typowner
     WHERE t.typnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') AND NOT r.rolsuper
    UNION ALL
    SELECT format('operator %s (owned by %s)', o.oid::regoperator, quote_ident(r.rolname))
      FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_roles r ON r.oid = o.oprowner
     WHERE o.oprnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') AND NOT r.rolsuper) w;
  IF what IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: refusing to install into objects a role that is not a superuser owns: %', what
      USING HINT = 'Whoever owns them could change what pgfollow runs with a superuser''s rights. Drop them (DROP SCHEMA pgfollow CASCADE), then install again.';
  END IF;
END
$owner$;

CREATE SCHEMA IF NOT EXISTS pgfollow;
REVOKE ALL ON SCHEMA pgfollow FROM PUBLIC;
GRANT USAGE ON SCHEMA pgfollow TO PUBLIC;

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

REVOKE ALL ON pgfollow.follow_progress FROM PUBLIC;
REVOKE ALL ON pgfollow.follows FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Checks at the door
-- ---------------------------------------------------------------------------------------------

-- Connection strings, read with the same rules as src/conninfo.ts (test/conninfo.test.ts feeds
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
  i int := 0;          -- 0-based, as in src/conninfo.ts
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
-- in a worker log: keywords and the values libpq would refuse (src/conninfo.ts checks the same
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
-- src/conninfo.ts does. A text that does not parse is not shown at all.
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
-- cannot leave its parentheses. Same rules as checkRowFilter in src/tableset.ts, which the worker
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

-- start_follow's options: {"tables": [names], "schemas": [names], "row_filters": {table: condition}}.
-- Names are written as in SQL (orders, sales.orders, "Odd"."Name"); row_filters' tables must be
-- listed in "tables" too. Whether they exist is checked upstream by the worker.
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
    IF k NOT IN ('tables', 'schemas', 'row_filters') THEN
      RAISE EXCEPTION 'pgfollow: unknown option "%"', k
        USING HINT = 'The options are "tables", "schemas" and "row_filters".', ERRCODE = 'invalid_parameter_value';
    END IF;
  END LOOP;
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
       f.options,
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
       f.created_at
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

-- ---------------------------------------------------------------------------------------------
-- Calling it from psql, unqualified
-- ---------------------------------------------------------------------------------------------

-- Thin wrappers in public, as the DBA types the calls. A function of the same name that another
-- role creates could be picked instead of these (a better-matching overload), and would then run
-- with the caller's privileges: install refuses to go ahead when such functions exist, and the
-- event trigger pgfollow_guard refuses their creation later on.
DO $foreign$
DECLARE
  f text;
BEGIN
  SELECT string_agg(p.oid::regprocedure::text || ' owned by ' || quote_ident(r.rolname), ', ') INTO f
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
   WHERE p.proname IN ('start_follow', 'stop_follow', 'pause_follow', 'resume_follow', 'resync_follow', 'remove_follow', 'wait_for_follow')
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
   WHERE p.proname IN ('start_follow', 'stop_follow', 'pause_follow', 'resume_follow', 'resync_follow', 'remove_follow', 'wait_for_follow')
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

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION pgfollow.start_follow(text, text, jsonb), pgfollow.stop_follow(bigint, boolean),
  pgfollow.pause_follow(bigint), pgfollow.resume_follow(bigint), pgfollow.resync_follow(bigint),
  pgfollow.remove_follow(bigint), pgfollow.wait_for_follow(bigint, pg_lsn, interval),
  public.start_follow(text, text, jsonb), public.stop_follow(bigint, boolean),
  public.pause_follow(bigint), public.resume_follow(bigint), public.resync_follow(bigint),
  public.remove_follow(bigint), public.wait_for_follow(bigint, pg_lsn, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgfollow.start_follow(text, text, jsonb), pgfollow.stop_follow(bigint, boolean),
  pgfollow.pause_follow(bigint), pgfollow.resume_follow(bigint), pgfollow.resync_follow(bigint),
  pgfollow.remove_follow(bigint),
  public.start_follow(text, text, jsonb), public.stop_follow(bigint, boolean),
  public.pause_follow(bigint), public.resume_follow(bigint), public.resync_follow(bigint),
  public.remove_follow(bigint) TO pgfollow_admin;
GRANT EXECUTE ON FUNCTION pgfollow.wait_for_follow(bigint, pg_lsn, interval), public.wait_for_follow(bigint, pg_lsn, interval)
  TO pgfollow_monitor;
REVOKE ALL ON pgfollow.follow_status FROM PUBLIC;
GRANT SELECT ON pgfollow.follow_status TO pgfollow_monitor;

-- pgfollow type descriptions, for the worker's value codec (src/codec.ts).
--
-- pgfollow.describe_type(typ oid) RETURNS jsonb describes a type as deeply as decoding its text
-- output needs:
--
--   {"oid": 23, "name": "int4", "schema": "pg_catalog", "category": "N", "kind": "b"}
--
--   name      pg_type.typname, not format_type(): arrays are described by their element
--   category  pg_type.typcategory
--   kind      pg_type.typtype: b base, c composite, d domain, e enum, r range, m multirange,
--             p pseudo
--   base      domains: the base type, described (a domain over a domain nests)
--   element   arrays: the element type, described; "delimiter" then holds the element's
--             typdelim (',' for every built-in type except box, which uses ';')
--   fields    composites: [{"name", "type"}] in attnum order, dropped columns left out, the
--             same columns record_out prints
--   subtype   ranges: pg_range.rngsubtype, described; multiranges: the subtype of their range
--
-- A type is an array only when it is its element's array type (element.typarray = type).
-- typcategory 'A' alone is not enough: int2vector and oidvector are category 'A' with an
-- element, but print '1 2 3', not '{1,2,3}'; name, point, box and line have typelem set and are
-- not arrays at all.
--
-- Postgres types cannot contain themselves, but the description still stops at a fixed depth
-- (a type there that would have children gets "truncated": true instead; the codec then keeps
-- its Postgres text) so a catalog oddity can never make it loop. Works on Postgres 14 to 18 (multiranges and pg_range.rngmultitypid are 14+).
--
-- Re-runnable: CREATE OR REPLACE only. Assumes schema pgfollow exists.

CREATE OR REPLACE FUNCTION pgfollow.describe_type_at(typ oid, depth integer) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t       record;
  elem    record;
  result  jsonb;
  sub     oid;
BEGIN
  SELECT ty.oid, ty.typname, n.nspname, ty.typcategory, ty.typtype, ty.typelem, ty.typlen,
         ty.typbasetype, ty.typrelid
    INTO t
    FROM pg_type ty
    JOIN pg_namespace n ON n.oid = ty.typnamespace
   WHERE ty.oid = typ;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;

  result := jsonb_build_object(
    'oid', t.oid::bigint,
    'name', t.typname::text,
    'schema', t.nspname::text,
    'category', t.typcategory::text,
    'kind', t.typtype::text);

  IF depth >= 12 THEN
    IF t.typtype IN ('d', 'c', 'r', 'm') OR (t.typelem <> 0 AND t.typlen = -1) THEN
      result := result || jsonb_build_object('truncated', true);
    END IF;
    RETURN result;
  END IF;

  IF t.typtype = 'd' THEN
    result := result || jsonb_build_object('base', pgfollow.describe_type_at(t.typbasetype, depth + 1));

  ELSIF t.typtype = 'c' THEN
    result := result || jsonb_build_object('fields', COALESCE((
      SELECT jsonb_agg(jsonb_build_object(
               'name', a.attname::text,
               'type', pgfollow.describe_type_at(a.atttypid, depth + 1))
             ORDER BY a.attnum)
        FROM pg_attribute a
       WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::jsonb));

  ELSIF t.typtype = 'r' THEN
    SELECT r.rngsubtype INTO sub FROM pg_range r WHERE r.rngtypid = t.oid;
    IF sub IS NOT NULL THEN
      result := result || jsonb_build_object('subtype', pgfollow.describe_type_at(sub, depth + 1));
    END IF;

  ELSIF t.typtype = 'm' THEN
    SELECT r.rngsubtype INTO sub FROM pg_range r WHERE r.rngmultitypid = t.oid;
    IF sub IS NOT NULL THEN
      result := result || jsonb_build_object('subtype', pgfollow.describe_type_at(sub, depth + 1));
    END IF;

  ELSIF t.typelem <> 0 AND t.typlen = -1 THEN
    SELECT e.typarray, e.typdelim INTO elem FROM pg_type e WHERE e.oid = t.typelem;
    IF FOUND AND elem.typarray = t.oid THEN
      result := result || jsonb_build_object(
        'element', pgfollow.describe_type_at(t.typelem, depth + 1),
        'delimiter', elem.typdelim::text);
    END IF;
  END IF;

  RETURN result;
END
$fn$;

CREATE OR REPLACE FUNCTION pgfollow.describe_type(typ oid) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT pgfollow.describe_type_at(typ, 0)
$fn$;

-- pgfollow DDL capture: describe changed tables and emit the description into the WAL.
-- Included by install.sql after types.sql; assumes schema pgfollow exists.
--
-- Messages (prefix 'pgfollow', transactional), each one authenticated: pg_logical_emit_message is
-- executable by every role, so the follower applies only what carries a valid HMAC-SHA256 made with
-- the key in pgfollow.capture_secret, which only superusers (and the capture) can read. Layout:
--   <version> SP <hex HMAC of the JSON bytes> SP <JSON, UTF-8>      version: 1
-- The JSON:
--   {"op":"ddl",    "tag", "tables":[<describe_table>...], "query"}   a table was created or changed
--   {"op":"drop",   "tag", "tables":[{oid,schema,name}...], "indexes":[oid...], "query"}
--   {"op":"ddl", ..., "reloads":[oid...]}   the tables whose content follows in reload messages
--   {"op":"reload", "oid"[, "partition"]}  then {"op":"rows", "oid", "rows":[[text|null,...],...]}...
--        a statement rewrote the table's rows without row changes in the WAL (ALTER COLUMN TYPE,
--        ADD COLUMN with a volatile default, SET LOGGED ...): its whole content follows; or a table
--        was attached as partition `partition` of partitioned table `oid`: its rows follow. Rows of
--        a partitioned table end with one more value: the OID of the leaf partition holding them.
--   {"op":"error",  "tag", "message", "query"}   the capture failed: the follow stops here
--
-- State the capture keeps within a transaction (which tables a statement rewrote; that the capture
-- itself is running DDL) lives in pgfollow.capture_state, keyed by transaction, never in session
-- settings: any role may SET a custom setting, and none may write that table.

-- The capture's key. One row; readable by superusers only. A random 32-byte key made at install
-- (gen_random_uuid draws from the server's strong random source) and the two HMAC pads derived from
-- it, so that emitting costs two sha256() calls.
CREATE TABLE IF NOT EXISTS pgfollow.capture_secret (
  id   integer PRIMARY KEY CHECK (id = 1),
  key  bytea NOT NULL,
  ipad bytea NOT NULL,
  opad bytea NOT NULL
);
REVOKE ALL ON pgfollow.capture_secret FROM PUBLIC;
DO $key$
DECLARE
  k bytea;
  i bytea;
  o bytea;
BEGIN
  IF NOT EXISTS (SELECT FROM pgfollow.capture_secret) THEN
    k := decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');
    -- HMAC (RFC 2104): the key padded to sha256's 64-byte block, XORed with 0x36 and 0x5c.
    i := k || decode(repeat('00', 64 - length(k)), 'hex');
    o := i;
    FOR n IN 0 .. 63 LOOP
      i := set_byte(i, n, get_byte(i, n) # 54);
      o := set_byte(o, n, get_byte(o, n) # 92);
    END LOOP;
    INSERT INTO pgfollow.capture_secret VALUES (1, k, i, o);
  END IF;
END
$key$;

-- The key, for the follower: it authenticates every capture message with it. Superusers and roles
-- with REPLICATION only; a REPLICATION role can read every byte of the WAL anyway.
CREATE OR REPLACE FUNCTION pgfollow.capture_key() RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF NOT coalesce((SELECT r.rolsuper OR r.rolreplication FROM pg_roles r WHERE r.rolname = session_user), false) THEN
    RAISE EXCEPTION 'pgfollow: only a superuser or a role with REPLICATION may read the capture key (% may not)', session_user
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Follow as a superuser, or as a role with the REPLICATION attribute.';
  END IF;
  RETURN (SELECT s.key FROM pgfollow.capture_secret s WHERE s.id = 1);
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.capture_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgfollow.capture_key() TO PUBLIC;

-- Per-transaction capture state. UNLOGGED: it is never decoded nor replicated, and rows live only
-- from one event of a statement to the next (an aborted transaction takes its rows with it).
--   kind 'rewritten': table_rewrite saw rel rewritten; ddl_command_end re-emits its rows
--   kind 'capturing': the capture runs DDL of its own (REPLICA IDENTITY FULL); its events are ignored
CREATE UNLOGGED TABLE IF NOT EXISTS pgfollow.capture_state (
  xid  xid8 NOT NULL,
  kind text NOT NULL,
  rel  oid NOT NULL
);
CREATE INDEX IF NOT EXISTS capture_state_xid ON pgfollow.capture_state (xid);
REVOKE ALL ON pgfollow.capture_state FROM PUBLIC;

-- Leaf partitions as last described, with their root: what a DDL statement changed in a partition
-- tree (DETACH, ATTACH, sub-partitions moving) is found by comparing the catalogs with it.
CREATE TABLE IF NOT EXISTS pgfollow.partition_map (
  leaf oid PRIMARY KEY,
  root oid NOT NULL
);
REVOKE ALL ON pgfollow.partition_map FROM PUBLIC;
INSERT INTO pgfollow.partition_map (leaf, root)
  SELECT c.oid, pg_partition_root(c.oid) FROM pg_class c
   WHERE c.relispartition AND c.relkind = 'r' AND c.relpersistence = 'p'
ON CONFLICT (leaf) DO UPDATE SET root = EXCLUDED.root;

-- Describes one table from the catalogs, as the follower needs it: identity (OID), name, columns
-- keyed by attnum, keys, unique constraints and indexes. This description, not the statement
-- text, is the truth the follower applies.
-- Values in it (fast defaults) are printed in the formats the follower reads, whatever the
-- session running the DDL has set: like every setting, those are another role's input.
CREATE OR REPLACE FUNCTION pgfollow.describe_table(rel oid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
  SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres' SET TimeZone = 'UTC'
  SET extra_float_digits = 3 SET bytea_output = 'hex' SET lc_monetary = 'C' AS $fn$
  SELECT jsonb_build_object(
    'oid', c.oid::bigint,
    'schema', n.nspname,
    'name', c.relname,
    'kind', c.relkind::text,
    'replident', c.relreplident::text,
    'columns', coalesce((
      SELECT jsonb_agg(jsonb_build_object(
               'attnum', a.attnum,
               'name', a.attname,
               'type', format_type(a.atttypid, a.atttypmod),
               'typoid', a.atttypid::bigint,
               'typmod', a.atttypmod,
               'notnull', a.attnotnull,
               'default', pg_get_expr(d.adbin, d.adrelid),
               'identity', nullif(a.attidentity::text, ''),
               'generated', nullif(a.attgenerated::text, ''),
               'typeinfo', pgfollow.describe_type(a.atttypid),
               -- the value rows that existed before ADD COLUMN ... DEFAULT take (a "fast default");
               -- a partitioned table has no rows of its own: its partitions hold that value
               'missing', CASE WHEN a.atthasmissing THEN array_to_string(a.attmissingval, '')
                               WHEN c.relkind = 'p' THEN (
                                 SELECT array_to_string(la.attmissingval, '') FROM pg_partition_tree(c.oid) pt
                                   JOIN pg_attribute la ON la.attrelid = pt.relid AND la.attname = a.attname
                                  WHERE pt.isleaf AND la.atthasmissing ORDER BY pt.relid LIMIT 1) END
             ) ORDER BY a.attnum)
        FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::jsonb),
    -- A deferrable key may be violated inside a transaction; SQLite checks every row at once, so
    -- such keys are mirrored as plain indexes (see "indexes").
    'primary_key', (
      SELECT to_jsonb(con.conkey) FROM pg_constraint con
       WHERE con.conrelid = c.oid AND con.contype = 'p' AND NOT con.condeferrable),
    'unique', coalesce((
      SELECT jsonb_agg(to_jsonb(con.conkey) ORDER BY con.conname) FROM pg_constraint con
       WHERE con.conrelid = c.oid AND con.contype = 'u' AND NOT con.condeferrable), '[]'::jsonb),
    'indexes', coalesce((
      SELECT jsonb_agg(jsonb_build_object(
               'oid', i.indexrelid::bigint,
               'name', ic.relname,
               'unique', i.indisunique AND con.oid IS NULL,
               'columns', to_jsonb((i.indkey::int2[])[0:i.indnkeyatts - 1]),
               'partial', i.indpred IS NOT NULL,
               'definition', pg_get_indexdef(i.indexrelid)
             ) ORDER BY ic.relname)
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')
       WHERE i.indrelid = c.oid
         -- indexes behind a mirrored key are part of the table already
         AND (con.oid IS NULL OR con.condeferrable)), '[]'::jsonb),
    -- A partitioned table is mirrored as one table holding the rows of all its leaf partitions,
    -- each row tagged with the leaf it lives in upstream.
    'partitions', CASE WHEN c.relkind = 'p' THEN coalesce((
      SELECT jsonb_agg(t.relid::bigint ORDER BY t.relid) FROM pg_partition_tree(c.oid) t
       WHERE t.isleaf AND t.relid <> c.oid), '[]'::jsonb) END
  )
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = rel
$fn$;

-- Emits one capture message. Owned by the installing superuser: pg_logical_emit_message needs
-- privileges that the roles running DDL usually lack. Without wal_level=logical there is nobody
-- to read the message, and emitting is skipped rather than failing the user's statement.
--
-- Logical decoding queues a transactional message at the *end* LSN of its WAL record, and row
-- changes at their *start* LSN; merging a subtransaction's changes with its parent's by LSN, the
-- message then ties with the record written right after it and may be replayed after it. DDL runs
-- in subtransactions often (this trigger's EXCEPTION block, savepoints, migration tools), so every
-- message is followed by an empty 'pgfollow.pad' message: the tie falls on the pad, which the
-- follower ignores, and the description keeps its place before the rows that follow it.
CREATE OR REPLACE FUNCTION pgfollow.emit(payload jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  body bytea;
  s pgfollow.capture_secret;
BEGIN
  IF current_setting('wal_level') = 'logical' THEN
    body := convert_to(payload::text, 'UTF8');
    SELECT * INTO STRICT s FROM pgfollow.capture_secret WHERE id = 1;
    PERFORM pg_logical_emit_message(true, 'pgfollow',
      convert_to('1 ' || encode(sha256(s.opad || sha256(s.ipad || body)), 'hex') || ' ', 'UTF8') || body);
    PERFORM pg_logical_emit_message(true, 'pgfollow.pad', '');
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.emit(jsonb) FROM PUBLIC;

-- Emits a table's whole content, 500 rows a message, each value as its type's text output (what
-- pgoutput sends too; format('%s') goes through the output function, a ::text cast may not), in
-- the output formats the worker's own sessions use, not the DDL session's.
-- Used after statements that rewrite rows without logging row changes.
DROP FUNCTION IF EXISTS pgfollow.emit_rows(oid);
CREATE OR REPLACE FUNCTION pgfollow.emit_rows(rel oid, target oid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres' SET TimeZone = 'UTC'
  SET extra_float_digits = 3 SET bytea_output = 'hex' SET lc_monetary = 'C' AS $fn$
DECLARE
  cols text;
  batch jsonb := '[]'::jsonb;
  n int := 0;
  r record;
  partitioned boolean := (SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = target);
BEGIN
  -- The target's columns, by name (a partition may number them differently).
  SELECT string_agg(format('CASE WHEN %1$I IS NULL THEN NULL ELSE format(''%%s'', %1$I) END', a.attname), ', ' ORDER BY a.attnum)
    INTO cols
    FROM pg_attribute a WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped;
  IF partitioned THEN
    cols := concat_ws(', ', cols, 'tableoid::bigint::text');
  END IF;
  -- ONLY: a table's own rows, not those of tables inheriting from it (mirrored as tables of their own).
  FOR r IN EXECUTE format('SELECT to_jsonb(ARRAY[%s]::text[]) AS v FROM %s%s', coalesce(cols, ''),
                          CASE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = rel) = 'p' THEN '' ELSE 'ONLY ' END, rel::regclass) LOOP
    batch := batch || jsonb_build_array(r.v);
    n := n + 1;
    IF n = 500 THEN
      PERFORM pgfollow.emit(jsonb_build_object('op', 'rows', 'oid', target::bigint, 'rows', batch));
      batch := '[]'::jsonb;
      n := 0;
    END IF;
  END LOOP;
  IF n > 0 THEN
    PERFORM pgfollow.emit(jsonb_build_object('op', 'rows', 'oid', target::bigint, 'rows', batch));
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.emit_rows(oid, oid) FROM PUBLIC;

-- table_rewrite: remembers, for this transaction, which followed tables a statement rewrote; the
-- statement's ddl_command_end then re-emits their content. A rewritten partition counts as its root.
CREATE OR REPLACE FUNCTION pgfollow.on_table_rewrite() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  rel oid := pg_event_trigger_table_rewrite_oid();
BEGIN
  INSERT INTO pgfollow.capture_state (xid, kind, rel)
    VALUES (pg_current_xact_id(), 'rewritten', coalesce(pg_partition_root(rel), rel));
END
$fn$;

-- ddl_command_end: describe every table (ordinary or partitioned, permanent) the command touched.
-- Runs as the installing superuser (SECURITY DEFINER) so that any role's DDL is captured, and never
-- fails the user's statement: a capture that cannot be built is emitted as an error message, which
-- stops the follow at this position instead of letting it diverge.
CREATE OR REPLACE FUNCTION pgfollow.on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  tables jsonb := '[]'::jsonb;
  gone jsonb := '[]'::jsonb;
  rewritten oid[] := '{}';
  created oid[];
  targets oid[] := '{}';
  attached jsonb := '[]'::jsonb;   -- [[root, leaf]...]: tables attached as partitions, rows follow
  reload oid[] := '{}';
  rel record;
  t oid;
  i int := 1;
  cur oid[];
  lf oid;
  moved oid;
  cur_xid xid8 := pg_current_xact_id_if_assigned();
BEGIN
  IF cur_xid IS NOT NULL THEN
    IF EXISTS (SELECT FROM pgfollow.capture_state s WHERE s.xid = cur_xid AND s.kind = 'capturing') THEN
      RETURN;
    END IF;
    WITH gone AS (
      DELETE FROM pgfollow.capture_state s WHERE s.xid = cur_xid AND s.kind = 'rewritten' RETURNING s.rel)
    SELECT coalesce(array_agg(DISTINCT gone.rel), '{}') INTO rewritten FROM gone;
  END IF;
  BEGIN
    SELECT coalesce(array_agg(cmd.objid), '{}') INTO created FROM pg_event_trigger_ddl_commands() cmd
     WHERE cmd.classid = 'pg_class'::regclass AND cmd.command_tag = 'CREATE TABLE';
    FOR rel IN
      SELECT DISTINCT c.oid, c.relkind, c.relreplident, c.relpersistence, c.relispartition,
             n.nspname, c.relname
        FROM pg_event_trigger_ddl_commands() cmd
        JOIN pg_class c ON c.oid = CASE
               WHEN cmd.classid = 'pg_class'::regclass THEN
                 CASE (SELECT relkind FROM pg_class WHERE oid = cmd.objid)
                   WHEN 'i' THEN (SELECT indrelid FROM pg_index WHERE indexrelid = cmd.objid)
                   WHEN 'I' THEN (SELECT indrelid FROM pg_index WHERE indexrelid = cmd.objid)
                   ELSE cmd.objid END
               WHEN cmd.classid = 'pg_constraint'::regclass THEN
                 (SELECT conrelid FROM pg_constraint WHERE oid = cmd.objid)
               WHEN cmd.classid = 'pg_attrdef'::regclass THEN
                 (SELECT adrelid FROM pg_attrdef WHERE oid = cmd.objid)
             END
        JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'pgfollow'
    LOOP
      IF rel.relpersistence <> 'p' THEN
        -- Temporary and unlogged tables are never decoded; a table turned UNLOGGED leaves the follow.
        IF rel.relpersistence = 'u' THEN
          gone := gone || jsonb_build_array(jsonb_build_object('oid', rel.oid::bigint, 'schema', rel.nspname, 'name', rel.relname));
        END IF;
        CONTINUE;
      END IF;
      -- UPDATE and DELETE fail upstream on a published table without a replica identity: a table
      -- (or partition) without a primary key gets REPLICA IDENTITY FULL so it stays writable.
      IF rel.relreplident = 'd' AND NOT EXISTS (
           SELECT 1 FROM pg_constraint WHERE conrelid = rel.oid AND contype = 'p') THEN
        INSERT INTO pgfollow.capture_state (xid, kind, rel) VALUES (pg_current_xact_id(), 'capturing', rel.oid);
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', rel.oid::regclass);
        DELETE FROM pgfollow.capture_state s WHERE s.xid = pg_current_xact_id() AND s.kind = 'capturing';
      END IF;
      -- A partitioned table that became a partition itself is no longer a table of its own.
      IF rel.relispartition AND EXISTS (SELECT FROM pgfollow.partition_map m WHERE m.root = rel.oid) THEN
        gone := gone || jsonb_build_array(jsonb_build_object('oid', rel.oid::bigint, 'schema', rel.nspname, 'name', rel.relname));
        DELETE FROM pgfollow.partition_map m WHERE m.root = rel.oid;
      END IF;
      -- A partition is mirrored in its root's table.
      t := CASE WHEN rel.relispartition THEN pg_partition_root(rel.oid) ELSE rel.oid END;
      IF NOT t = ANY (targets) THEN targets := targets || t; END IF;
    END LOOP;
    -- Tables inheriting from a changed table (INHERITS) change with it: ADD, DROP, ALTER COLUMN reach them.
    WHILE EXISTS (SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = ANY (targets) AND NOT c.relispartition AND c.relpersistence = 'p' AND NOT i.inhrelid = ANY (targets)) LOOP
      SELECT targets || array_agg(DISTINCT i.inhrelid) INTO targets
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = ANY (targets) AND NOT c.relispartition AND c.relpersistence = 'p' AND NOT i.inhrelid = ANY (targets);
    END LOOP;
    -- Partition trees: leaves that left a root (DETACH, a sub-partition moved) are described where
    -- they went; leaves that joined one without being created by this statement (ATTACH) have
    -- their rows emitted. Targets found on the way are visited too.
    WHILE i <= coalesce(array_length(targets, 1), 0) LOOP
      t := targets[i];
      i := i + 1;
      CONTINUE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = t) IS DISTINCT FROM 'p';
      SELECT coalesce(array_agg(pt.relid), '{}') INTO cur FROM pg_partition_tree(t) pt
        JOIN pg_class c ON c.oid = pt.relid
       WHERE pt.isleaf AND pt.relid <> t AND c.relkind = 'r' AND c.relpersistence = 'p';
      FOR lf IN SELECT m.leaf FROM pgfollow.partition_map m WHERE m.root = t AND NOT m.leaf = ANY (cur) LOOP
        moved := NULL;
        SELECT CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END INTO moved
          FROM pg_class c WHERE c.oid = lf AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p';
        IF moved IS NOT NULL AND NOT moved = ANY (targets) THEN
          targets := targets || moved;
        END IF;
      END LOOP;
      FOREACH lf IN ARRAY cur LOOP
        IF NOT EXISTS (SELECT FROM pgfollow.partition_map m WHERE m.leaf = lf AND m.root = t) AND NOT lf = ANY (created) THEN
          attached := attached || jsonb_build_array(jsonb_build_array(t::bigint, lf::bigint));
        END IF;
        -- Its former root, if that became a partition itself, is no longer a table of its own.
        FOR rel IN SELECT c.oid, n.nspname, c.relname FROM pgfollow.partition_map m
                     JOIN pg_class c ON c.oid = m.root JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE m.leaf = lf AND m.root <> t AND c.relispartition LOOP
          IF NOT gone @> jsonb_build_array(jsonb_build_object('oid', rel.oid::bigint)) THEN
            gone := gone || jsonb_build_array(jsonb_build_object('oid', rel.oid::bigint, 'schema', rel.nspname, 'name', rel.relname));
          END IF;
        END LOOP;
      END LOOP;
      DELETE FROM pgfollow.partition_map m WHERE m.root = t OR m.leaf = ANY (cur);
      INSERT INTO pgfollow.partition_map (leaf, root) SELECT x, t FROM unnest(cur) x;
    END LOOP;
    -- Plain tables first: a detached partition exists before its former root lets it go.
    SELECT coalesce(jsonb_agg(pgfollow.describe_table(c.oid) ORDER BY c.relkind DESC, c.oid), '[]'::jsonb) INTO tables
      FROM pg_class c WHERE c.oid = ANY (targets) AND c.relkind IN ('r', 'p') AND NOT c.relispartition;
    SELECT coalesce(array_agg(x), '{}') INTO reload FROM unnest(targets) x WHERE x = ANY (rewritten);
    IF jsonb_array_length(gone) > 0 THEN
      PERFORM pgfollow.emit(jsonb_build_object(
        'op', 'drop', 'tag', tg_tag, 'tables', gone, 'indexes', '[]'::jsonb, 'query', left(current_query(), 2000)));
    END IF;
    IF jsonb_array_length(tables) > 0 THEN
      PERFORM pgfollow.emit(jsonb_build_object(
        'op', 'ddl', 'tag', tg_tag, 'tables', tables, 'reloads', to_jsonb(reload::bigint[]), 'query', left(current_query(), 2000)));
    END IF;
    FOREACH t IN ARRAY reload LOOP
      PERFORM pgfollow.emit(jsonb_build_object('op', 'reload', 'oid', t::bigint));
      PERFORM pgfollow.emit_rows(t, t);
    END LOOP;
    FOR rel IN SELECT (a ->> 0)::oid AS root, (a ->> 1)::oid AS leaf FROM jsonb_array_elements(attached) a LOOP
      CONTINUE WHEN rel.root = ANY (reload);
      PERFORM pgfollow.emit(jsonb_build_object('op', 'reload', 'oid', rel.root::bigint, 'partition', rel.leaf::bigint));
      PERFORM pgfollow.emit_rows(rel.leaf, rel.root);
    END LOOP;
  EXCEPTION WHEN OTHERS THEN
    PERFORM pgfollow.emit(jsonb_build_object(
      'op', 'error', 'tag', tg_tag, 'query', left(current_query(), 2000),
      'message', 'pgfollow could not describe this DDL: ' || SQLERRM));
    RAISE WARNING 'pgfollow: could not describe % for the followers: %', tg_tag, SQLERRM;
  END;
END
$fn$;

-- sql_drop: tables and indexes are only visible here once dropped, under DROP TABLE, DROP INDEX,
-- DROP SCHEMA ... CASCADE, DROP OWNED and others alike.
CREATE OR REPLACE FUNCTION pgfollow.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  dropped jsonb;
  indexes jsonb;
BEGIN
  SELECT jsonb_agg(jsonb_build_object('oid', d.objid::bigint, 'schema', d.schema_name, 'name', d.object_name))
    INTO dropped
    FROM pg_event_trigger_dropped_objects() d
   WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.object_type = 'table'
     AND NOT d.is_temporary AND d.schema_name IS DISTINCT FROM 'pgfollow';
  SELECT jsonb_agg(d.objid::bigint)
    INTO indexes
    FROM pg_event_trigger_dropped_objects() d
   WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.object_type = 'index'
     AND NOT d.is_temporary AND d.schema_name IS DISTINCT FROM 'pgfollow';
  DELETE FROM pgfollow.partition_map m
   WHERE m.leaf IN (SELECT d.objid FROM pg_event_trigger_dropped_objects() d WHERE d.classid = 'pg_class'::regclass)
      OR m.root IN (SELECT d.objid FROM pg_event_trigger_dropped_objects() d WHERE d.classid = 'pg_class'::regclass);
  IF dropped IS NOT NULL OR indexes IS NOT NULL THEN
    PERFORM pgfollow.emit(jsonb_build_object(
      'op', 'drop', 'tag', tg_tag, 'tables', coalesce(dropped, '[]'::jsonb), 'indexes', coalesce(indexes, '[]'::jsonb),
      'query', left(current_query(), 2000)));
  END IF;
EXCEPTION WHEN OTHERS THEN
  PERFORM pgfollow.emit(jsonb_build_object(
    'op', 'error', 'tag', tg_tag, 'query', left(current_query(), 2000),
    'message', 'pgfollow could not capture this DROP: ' || SQLERRM));
  RAISE WARNING 'pgfollow: could not capture % for the followers: %', tg_tag, SQLERRM;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS pgfollow_ddl_command_end;
CREATE EVENT TRIGGER pgfollow_ddl_command_end ON ddl_command_end
  EXECUTE FUNCTION pgfollow.on_ddl_command_end();
DROP EVENT TRIGGER IF EXISTS pgfollow_sql_drop;
CREATE EVENT TRIGGER pgfollow_sql_drop ON sql_drop
  EXECUTE FUNCTION pgfollow.on_sql_drop();
DROP EVENT TRIGGER IF EXISTS pgfollow_table_rewrite;
CREATE EVENT TRIGGER pgfollow_table_rewrite ON table_rewrite
  EXECUTE FUNCTION pgfollow.on_table_rewrite();

-- The installed version, for people and tools.
CREATE OR REPLACE FUNCTION pgfollow.version() RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$ SELECT '0.1.0' $fn$;


-- pg_dump keeps the follows and their numbering (not their progress, which workers rewrite).
SELECT pg_catalog.pg_extension_config_dump('pgfollow.follows', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgfollow.follows', 'id'), '');
