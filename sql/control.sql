-- pgfollow control plane: the follows table, start_follow()/stop_follow(), follow_status.
-- Included by install.sql; assumes schema pgfollow exists.

-- ---------------------------------------------------------------------------------------------
-- Control plane
-- ---------------------------------------------------------------------------------------------

-- What the DBA asked for. Changes only on start/stop, so its few WAL records cost nothing.
CREATE TABLE IF NOT EXISTS pgfollow.follows (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  conninfo    text NOT NULL,
  sqlite_path text,
  -- 'running' or 'stopped'
  desired     text NOT NULL DEFAULT 'running' CHECK (desired IN ('running', 'stopped')),
  slot_name   text NOT NULL,
  publication text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

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
REVOKE ALL ON pgfollow.follow_progress FROM PUBLIC;
REVOKE ALL ON pgfollow.follows FROM PUBLIC;

-- Checks a libpq connection string at the door, so a typo is refused when the DBA types it and
-- not minutes later in a worker log. Accepts the URI form (postgres:// or postgresql://) and the
-- keyword = value form with libpq's quoting rules; keywords are checked against libpq's list.
CREATE OR REPLACE FUNCTION pgfollow.check_conninfo(conninfo text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  known constant text[] := ARRAY['host','hostaddr','port','dbname','user','password','passfile',
    'channel_binding','connect_timeout','client_encoding','options','application_name',
    'fallback_application_name','keepalives','keepalives_idle','keepalives_interval',
    'keepalives_count','tcp_user_timeout','replication','gssencmode','sslmode','sslnegotiation',
    'requiressl','sslcompression','sslcert','sslkey','sslpassword','sslcertmode','sslrootcert',
    'sslcrl','sslcrldir','sslsni','requirepeer','ssl_min_protocol_version',
    'ssl_max_protocol_version','krbsrvname','gsslib','gssdelegation','service',
    'target_session_attrs','load_balance_hosts','require_auth','scram_client_key',
    'scram_server_key','min_protocol_version','max_protocol_version','oauth_issuer',
    'oauth_client_id','oauth_client_secret','oauth_scope'];
  s text := coalesce(conninfo, '');
  i int := 1;
  n int := length(s);
  key text;
  c text;
BEGIN
  IF s ~ '^\s*$' THEN
    RAISE EXCEPTION 'pgfollow: conninfo is empty'
      USING HINT = 'Give a libpq connection string, e.g. ''host=db.example.com dbname=app user=postgres''.';
  END IF;
  IF s ~* '^postgres(ql)?://' THEN
    IF s ~ '\s' THEN
      RAISE EXCEPTION 'pgfollow: malformed conninfo URI: it contains white space'
        USING HINT = 'Percent-encode spaces in a postgres:// URI, or use the keyword=value form.';
    END IF;
    RETURN;
  END IF;
  LOOP
    WHILE i <= n AND substr(s, i, 1) ~ '\s' LOOP i := i + 1; END LOOP;
    EXIT WHEN i > n;
    key := substring(substr(s, i) FROM '^[A-Za-z_]+');
    IF key IS NULL THEN
      RAISE EXCEPTION 'pgfollow: malformed conninfo near "%": expected a keyword', left(substr(s, i), 20)
        USING HINT = 'Use keyword=value pairs separated by spaces, e.g. ''host=127.0.0.1 port=5432 dbname=app''.';
    END IF;
    IF NOT key = ANY (known) THEN
      RAISE EXCEPTION 'pgfollow: invalid conninfo keyword "%"', key
        USING HINT = 'See "Parameter Key Words" in the libpq documentation for the valid keywords.';
    END IF;
    i := i + length(key);
    WHILE i <= n AND substr(s, i, 1) ~ '\s' LOOP i := i + 1; END LOOP;
    IF substr(s, i, 1) <> '=' THEN
      RAISE EXCEPTION 'pgfollow: malformed conninfo: missing "=" after keyword "%"', key
        USING HINT = 'Write it as ' || key || '=value.';
    END IF;
    i := i + 1;
    WHILE i <= n AND substr(s, i, 1) ~ '\s' LOOP i := i + 1; END LOOP;
    IF substr(s, i, 1) = '''' THEN
      i := i + 1;
      LOOP
        IF i > n THEN
          RAISE EXCEPTION 'pgfollow: malformed conninfo: unterminated quoted value for "%"', key
            USING HINT = 'Close the value with a single quote; write a quote inside it as \''.';
        END IF;
        c := substr(s, i, 1);
        IF c = '\' THEN i := i + 2;
        ELSIF c = '''' THEN i := i + 1; EXIT;
        ELSE i := i + 1;
        END IF;
      END LOOP;
    ELSE
      WHILE i <= n AND substr(s, i, 1) !~ '\s' LOOP
        IF substr(s, i, 1) = '\' THEN i := i + 1; END IF;
        i := i + 1;
      END LOOP;
    END IF;
  END LOOP;
END
$fn$;

-- A name unique to this control database, so two control databases following one upstream never
-- share a slot: pgfollow_<id>_<8 hex digits of this cluster's system identifier and database>.
CREATE OR REPLACE FUNCTION pgfollow.object_name(follow_id bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT format('pgfollow_%s_%s', follow_id,
                left(md5((SELECT system_identifier::text FROM pg_control_system()) || '/' || current_database()), 8))
$fn$;

CREATE OR REPLACE FUNCTION pgfollow.start_follow(conninfo text, sqlite_path text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  new_id bigint;
BEGIN
  PERFORM pgfollow.check_conninfo(conninfo);
  IF sqlite_path IS NOT NULL AND sqlite_path !~ '\S' THEN
    RAISE EXCEPTION 'pgfollow: sqlite_path is empty'
      USING HINT = 'Pass NULL for the default file, or a file name such as ''app.db''.';
  END IF;
  new_id := nextval(pg_get_serial_sequence('pgfollow.follows', 'id'));
  INSERT INTO pgfollow.follows (id, conninfo, sqlite_path, slot_name, publication)
    OVERRIDING SYSTEM VALUE
    VALUES (new_id, conninfo, sqlite_path, pgfollow.object_name(new_id), pgfollow.object_name(new_id));
  PERFORM pg_notify('pgfollow', new_id::text);
  RETURN new_id;
END
$fn$;

CREATE OR REPLACE FUNCTION pgfollow.stop_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  UPDATE pgfollow.follows f SET desired = 'stopped', updated_at = now() WHERE f.id = stop_follow.id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pgfollow: no follow with id %', id
      USING HINT = 'SELECT * FROM pgfollow.follow_status lists the follows.';
  END IF;
  PERFORM pg_notify('pgfollow', id::text);
END
$fn$;

-- Only superusers start and stop follows until the role model lands; the functions are reachable
-- unqualified through thin wrappers in public, as the DBA types them.
REVOKE ALL ON FUNCTION pgfollow.start_follow(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgfollow.stop_follow(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION public.start_follow(conninfo text, sqlite_path text DEFAULT NULL)
RETURNS bigint LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.start_follow(conninfo, sqlite_path) $fn$;
CREATE OR REPLACE FUNCTION public.stop_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.stop_follow(id) $fn$;
REVOKE ALL ON FUNCTION public.start_follow(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.stop_follow(bigint) FROM PUBLIC;

-- Passwords never leave the control table: password=... and the password part of a URI are masked.
CREATE OR REPLACE FUNCTION pgfollow.mask_conninfo(conninfo text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT regexp_replace(
           regexp_replace(conninfo, '(password\s*=\s*)(''([^''\\]|\\.)*''|\S+)', '\1********', 'gi'),
           '^(postgres(ql)?://[^:/@]*:)[^@]*@', '\1********@', 'i')
$fn$;

CREATE OR REPLACE VIEW pgfollow.follow_status AS
SELECT f.id,
       CASE
         WHEN f.desired = 'stopped' THEN CASE WHEN p.state = 'stopped' THEN 'stopped' ELSE 'stopping' END
         ELSE coalesce(p.state, 'requested')
       END AS state,
       pgfollow.mask_conninfo(f.conninfo) AS upstream,
       f.sqlite_path,
       p.received_lsn,
       p.applied_lsn,
       p.acked_lsn,
       p.applied_at,
       coalesce(p.rows_applied, 0) AS rows_applied,
       coalesce(p.xacts_applied, 0) AS xacts_applied,
       coalesce(p.tables, 0) AS tables,
       p.last_error,
       p.last_error_at,
       f.slot_name,
       p.worker,
       p.heartbeat_at,
       f.created_at
  FROM pgfollow.follows f
  LEFT JOIN pgfollow.follow_progress p ON p.id = f.id;
REVOKE ALL ON pgfollow.follow_status FROM PUBLIC;

