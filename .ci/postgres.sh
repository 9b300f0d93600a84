#!/usr/bin/env bash
# A private PostgreSQL for the store tests: `postgres.sh start DIR` initialises
# and starts a throwaway cluster in DIR, listening on a unix socket in DIR
# only (no TCP port to collide with), and prints its DSN (a DIR that already
# holds a cluster is started again, keeping its data: an outage in a test);
# `postgres.sh stop DIR` stops it. Needs Debian's postgresql package.
set -euo pipefail
cmd=${1:?usage: postgres.sh start|stop DIR}
dir=${2:?usage: postgres.sh start|stop DIR}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/initdb" ] || { echo "postgres.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 1; }
# initdb refuses to run as root: run the server as the postgres user then.
as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as "$bindir/initdb" -D "$dir/data" -A trust -U pullgate >"$dir/initdb.log" 2>&1
  fi
  as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses= -k $dir -c fsync=off" start >/dev/null
  echo "postgres://pullgate@/postgres?host=$dir&sslmode=disable"
  ;;
stop)
  as "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  ;;
*) echo "usage: postgres.sh start|stop DIR" >&2; exit 2 ;;
esac
