#!/usr/bin/env bash
# Run by the postgres image on the first start of an empty data directory (mounted into
# /docker-entrypoint-initdb.d by docker-compose.yml). Installs pgfollow into $POSTGRES_DB.
# install.sql is read from the mounted sql/ directory so that its \ir includes resolve.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc \
  --username "${POSTGRES_USER:-postgres}" \
  --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" \
  -f /pgfollow-sql/install.sql
