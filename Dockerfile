# pgfollow worker image. The ENTRYPOINT is the pgfollow CLI, e.g.
#   docker run --rm -v pgfollow-data:/data pgfollow worker --control '<conninfo>' --data-dir /data

# --- build: compile TypeScript and better-sqlite3's native addon (Node 24, the current LTS) ------
# The image runs the worker: the embedded Postgres of the demo (an optional dependency) stays out.
FROM node:24-bookworm-slim AS build

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The whole build context as .dockerignore leaves it: package.json, package-lock.json,
# tsconfig.json, sql/ and the directories tsconfig.json compiles (src, test, bench), since the
# prepare script run by npm ci is tsc. One COPY of the context rather than one per directory keeps
# the build working from a fresh clone when a directory has no files yet (git keeps no empty
# directories, and COPY of a missing path fails).
COPY . .

RUN npm ci \
 && npm prune --omit=dev --omit=optional \
 && npm cache clean --force

# --- runtime -------------------------------------------------------------------------------------
FROM node:24-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app

# SQLite files live here; the directory belongs to the unprivileged user the worker runs as.
RUN mkdir -p /data && chown node:node /data
VOLUME /data

USER node
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
CMD ["--help"]
