-- pgfollow type descriptions, for the worker's value codec (src/sqlite/values.ts).
--
-- pgfollow.describe_type(typ oid) RETURNS jsonb describes a type as deeply as decoding its text
-- output needs:
--
--   {"oid": 23, "name": "int4", "schema": "pg_catalog", "category": "N", "kind": "b"}
--
--   name      pg_type.typname, not format_type(): arrays are described by their element
--   category  pg_type.typcategory
--   kind      pg_type.typtype: b base, c composite, d domain, e enum, r range, m multirange,
--             p pseudo
--   base      domains: the base type, described (a domain over a domain nests)
--   element   arrays: the element type, described; "delimiter" then holds the element's
--             typdelim (',' for every built-in type except box, which uses ';')
--   fields    composites: [{"name", "type"}] in attnum order, dropped columns left out, the
--             same columns record_out prints
--   subtype   ranges: pg_range.rngsubtype, described; multiranges: the subtype of their range
--
-- A type is an array only when it is its element's array type (element.typarray = type).
-- typcategory 'A' alone is not enough: int2vector and oidvector are category 'A' with an
-- element, but print '1 2 3', not '{1,2,3}'; name, point, box and line have typelem set and are
-- not arrays at all.
--
-- Postgres types cannot contain themselves, but the description still stops at a fixed depth
-- (a type there that would have children gets "truncated": true instead; the codec then keeps
-- its Postgres text) so a catalog oddity can never make it loop. Works on Postgres 14 to 18 (multiranges and pg_range.rngmultitypid are 14+).
--
-- Re-runnable: CREATE OR REPLACE only. Assumes schema pgfollow exists.

CREATE OR REPLACE FUNCTION pgfollow.describe_type_at(typ oid, depth integer) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t       record;
  elem    record;
  result  jsonb;
  sub     oid;
BEGIN
  SELECT ty.oid, ty.typname, n.nspname, ty.typcategory, ty.typtype, ty.typelem, ty.typlen,
         ty.typbasetype, ty.typrelid
    INTO t
    FROM pg_type ty
    JOIN pg_namespace n ON n.oid = ty.typnamespace
   WHERE ty.oid = typ;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;

  result := jsonb_build_object(
    'oid', t.oid::bigint,
    'name', t.typname::text,
    'schema', t.nspname::text,
    'category', t.typcategory::text,
    'kind', t.typtype::text);

  IF depth >= 12 THEN
    IF t.typtype IN ('d', 'c', 'r', 'm') OR (t.typelem <> 0 AND t.typlen = -1) THEN
      result := result || jsonb_build_object('truncated', true);
    END IF;
    RETURN result;
  END IF;

  IF t.typtype = 'd' THEN
    result := result || jsonb_build_object('base', pgfollow.describe_type_at(t.typbasetype, depth + 1));

  ELSIF t.typtype = 'c' THEN
    result := result || jsonb_build_object('fields', COALESCE((
      SELECT jsonb_agg(jsonb_build_object(
               'name', a.attname::text,
               'type', pgfollow.describe_type_at(a.atttypid, depth + 1))
             ORDER BY a.attnum)
        FROM pg_attribute a
       WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::jsonb));

  ELSIF t.typtype = 'r' THEN
    SELECT r.rngsubtype INTO sub FROM pg_range r WHERE r.rngtypid = t.oid;
    IF sub IS NOT NULL THEN
      result := result || jsonb_build_object('subtype', pgfollow.describe_type_at(sub, depth + 1));
    END IF;

  ELSIF t.typtype = 'm' THEN
    SELECT r.rngsubtype INTO sub FROM pg_range r WHERE r.rngmultitypid = t.oid;
    IF sub IS NOT NULL THEN
      result := result || jsonb_build_object('subtype', pgfollow.describe_type_at(sub, depth + 1));
    END IF;

  ELSIF t.typelem <> 0 AND t.typlen = -1 THEN
    SELECT e.typarray, e.typdelim INTO elem FROM pg_type e WHERE e.oid = t.typelem;
    IF FOUND AND elem.typarray = t.oid THEN
      result := result || jsonb_build_object(
        'element', pgfollow.describe_type_at(t.typelem, depth + 1),
        'delimiter', elem.typdelim::text);
    END IF;
  END IF;

  RETURN result;
END
$fn$;

CREATE OR REPLACE FUNCTION pgfollow.describe_type(typ oid) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT pgfollow.describe_type_at(typ, 0)
$fn$;
