-- pgfollow capture: proofs that a capture message is the capture's. The table
-- pgfollow.capture_proof, adding it to the publications of follows made before proofs existed, and
-- publish_capture(). Included by sql/capture.sql.

-- Proofs that a capture message is the capture's: emit() inserts the SHA-256 of each message's
-- content here right before emitting it, in the same transaction, and deletes the row again at
-- once (the insert stays in the WAL, which is all the follower reads: the table stays empty).
-- Nobody but its owner (a superuser) and the capture may write it. A follow's publication must
-- include it (publish_capture); a publication FOR ALL TABLES does already. The follower never
-- mirrors it.
CREATE TABLE IF NOT EXISTS pgfollow.capture_proof (
  id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  digest bytea NOT NULL
);
REVOKE ALL ON pgfollow.capture_proof FROM PUBLIC;

-- Follows made before proofs existed: their publications (unless of all tables) get the proofs in
-- this same transaction, before emit() writes any (this install's own DROP of the old key emits a
-- message), so that no message of the new layout goes without its proof.
DO $proofs$
DECLARE
  p name;
BEGIN
  FOR p IN
    SELECT x.pubname FROM pg_catalog.pg_publication x
     WHERE NOT x.puballtables
       AND (x.pubname LIKE 'pgfollow\_%' OR x.pubname IN (SELECT f.publication FROM pgfollow.follows f))
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_publication_rel r
                        WHERE r.prpubid = x.oid AND r.prrelid = 'pgfollow.capture_proof'::pg_catalog.regclass)
  LOOP
    EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLE pgfollow.capture_proof', p);
  END LOOP;
END
$proofs$;

-- Adds pgfollow.capture_proof to a follow's publication, for the follower (which may run as a role
-- that owns the publication but not the table). Only the publication's owner (or a member of that
-- role) may; a publication FOR ALL TABLES has it already. Proofs are digests of messages that are
-- in the WAL themselves: publishing them tells a REPLICATION role nothing it cannot read anyway.
CREATE OR REPLACE FUNCTION pgfollow.publish_capture(pub name) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  p record;
BEGIN
  SELECT x.oid, x.pubowner, x.puballtables INTO p FROM pg_catalog.pg_publication x WHERE x.pubname = pub;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pgfollow: publication "%" does not exist', pub USING ERRCODE = 'undefined_object';
  END IF;
  IF NOT pg_catalog.pg_has_role(session_user, p.pubowner, 'USAGE') THEN
    RAISE EXCEPTION 'pgfollow: only the owner of publication "%" may add the capture''s proofs to it (% may not)', pub, session_user
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p.puballtables OR EXISTS (SELECT FROM pg_catalog.pg_publication_rel r
                                WHERE r.prpubid = p.oid AND r.prrelid = 'pgfollow.capture_proof'::pg_catalog.regclass) THEN
    RETURN;
  END IF;
  EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLE pgfollow.capture_proof', pub);
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.publish_capture(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgfollow.publish_capture(name) TO PUBLIC;
