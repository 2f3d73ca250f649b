-- pgfollow control plane, checks at the door (1 of 2): connection strings, parsed
-- (conninfo_params), checked (check_conninfo) and masked for display (mask_conninfo).
-- Included by sql/control.sql.

-- Connection strings, read with the same rules as src/upstream/conninfo.ts
-- (test/control/rules.test.ts feeds both the same cases): libpq's keyword = value form with its
-- quoting, and postgres:// URIs. What libpq, URL parsers and node-postgres could read differently
-- (several hosts, '#' or a second '@' in a URI) is refused. Messages never repeat a value: it
-- could be a password.

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
