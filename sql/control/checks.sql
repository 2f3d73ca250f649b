-- pgfollow control plane, checks at the door (2 of 2): who is calling (caller_is_superuser), the
-- sqlite_path, start_follow's options (row filters, the feed), and those options against this
-- database when it is the follow's upstream (check_options_here). Included by sql/control.sql.

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
