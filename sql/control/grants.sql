-- pgfollow control plane: privileges on what the roles call and read. (Internal functions have
-- their REVOKE next to them.) Included by sql/control.sql, last.

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
