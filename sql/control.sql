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

-- Its parts, in sql/control/, in this order (what is checked when created, a view or an SQL
-- function's body, uses only what comes before it):
--   roles.sql      pgfollow_admin and pgfollow_monitor
--   tables.sql     pgfollow.follows and pgfollow.follow_progress
--   conninfo.sql   checks at the door: connection strings, parsed, checked and masked
--   checks.sql     checks at the door: the caller, sqlite_path, options, options against this database
--   lifecycle.sql  start_follow() ... wait_for_follow() and the internal helpers they share
--   status.sql     the views follow_status and follow_tables
--   wrappers.sql   the unqualified wrappers in public, and the event trigger guarding their names
--   grants.sql     who may call and read what
\ir control/roles.sql
\ir control/tables.sql
\ir control/conninfo.sql
\ir control/checks.sql
\ir control/lifecycle.sql
\ir control/status.sql
\ir control/wrappers.sql
\ir control/grants.sql
