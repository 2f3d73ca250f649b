-- pgfollow capture: what the capture remembers, within a transaction (pgfollow.capture_state) and
-- from one statement to the next (pgfollow.partition_map). Included by sql/capture.sql.

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
