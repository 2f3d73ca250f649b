-- pgfollow DDL capture: describe changed tables and emit the description into the WAL.
-- Included by install.sql after types.sql; assumes schema pgfollow exists.
--
-- Messages (prefix 'pgfollow', transactional), each one proven: pg_logical_emit_message is
-- executable by every role, so the follower applies a message only if the same transaction
-- inserted, just before it, a row into pgfollow.capture_proof holding the SHA-256 of the message's
-- exact content. Only the capture (SECURITY DEFINER, owned by a superuser) may write that table;
-- a REPLICATION role can read every byte of the WAL, proofs included, but cannot add one to its
-- own transaction, so it cannot get a message of its own applied, nor an old one replayed. Layout:
--   <version> SP <JSON, UTF-8>      version: 2 (version 1 carried an HMAC made with a key kept in
--                                   a logged table, which every REPLICATION role could decode)
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

-- Its parts, in sql/capture/, in this order (what is checked when created, an SQL function's body,
-- uses only what comes before it):
--   proofs.sql     pgfollow.capture_proof and publish_capture()
--   state.sql      pgfollow.capture_state and pgfollow.partition_map
--   describe.sql   describe_table()
--   emit.sql       emit(), emit_rows(), reload_table(), on_table_rewrite()
--   type_ddl.sql   pgfollow.enum_labels, tables_using_types(), type_ddl_targets()
--   triggers.sql   on_ddl_command_end(), on_sql_drop() and the event triggers
\ir capture/proofs.sql
\ir capture/state.sql
\ir capture/describe.sql
\ir capture/emit.sql
\ir capture/type_ddl.sql
\ir capture/triggers.sql
