#!/bin/sh
# Stands in for the official postgres image's entrypoint (no registry is
# reachable in tests): on first start, initialise the data directory from
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, then run the server as the
# postgres user, listening on every interface. `docker stop` sends SIGTERM,
# which Postgres takes as a "smart" shutdown that waits for every client to
# leave; it is passed on as SIGINT, a fast shutdown, as the official image does.
set -eu
PGDATA=/var/lib/postgresql/data
BIN=/usr/lib/postgresql/15/bin
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  password_file=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
  chown postgres "$password_file"
  as_postgres "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$password_file" \
    --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C --no-sync
  rm -f "$password_file"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != "postgres" ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\"" | as_postgres "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null
  fi
fi
as_postgres "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' &
server=$!
trap 'kill -INT "$server"' TERM INT
# The first wait returns when a signal arrives; the second waits for the shutdown itself.
wait "$server" || wait "$server"
