-- pgfollow capture: describe_table(), a table as the follower needs it, from the catalogs.
-- Included by sql/capture.sql, after sql/types.sql (describe_type).

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
