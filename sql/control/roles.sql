-- pgfollow control plane: the roles pgfollow_admin and pgfollow_monitor (cluster-wide: shared by
-- every database pgfollow is installed in). Included by sql/control.sql.

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
