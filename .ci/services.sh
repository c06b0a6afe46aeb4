#!/usr/bin/env bash
# Start the services the test suite uses besides SQLite: a throw-away PostgreSQL server.
#
# Installs Debian's `postgresql` package when no server binaries are found (needs root or
# password-less sudo), starts a cluster of its own under var/ci-postgres (loopback only, trust
# authentication, no fsync: test data only), creates the database `vesselwatch_test`, and writes
# its SQLAlchemy URL to var/ci-postgres-url, where the tests look for it (an environment variable
# VESSELWATCH_TEST_POSTGRES_URL takes precedence over the file). Exports nothing.
#
# Idempotent and fast when everything is already there: it only checks the server is up.
# If PostgreSQL cannot be installed or started it says why on stderr, writes the reason to
# var/ci-postgres-unavailable (the tests show it as their skip reason) and exits 0, so the rest of
# the suite still runs.
#
# Environment: VESSELWATCH_CI_POSTGRES_PORT (default 54329).
set -uo pipefail
cd "$(dirname "$0")/.."

port="${VESSELWATCH_CI_POSTGRES_PORT:-54329}"
root="$PWD/var/ci-postgres"
data="$root/data"
url_file="$PWD/var/ci-postgres-url"
unavailable_file="$PWD/var/ci-postgres-unavailable"
database="vesselwatch_test"
superuser="vesselwatch"
mkdir -p "$PWD/var"

give_up() {
    echo "services.sh: PostgreSQL unavailable: $*" >&2
    rm -f "$url_file"
    echo "$*" > "$unavailable_file"
    exit 0
}

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

bin="$(find_bin)"
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
    if [ "$(id -u)" = 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        give_up "no PostgreSQL server binaries under /usr/lib/postgresql and no root to apt-get install postgresql"
    fi
    echo "services.sh: installing postgresql with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    { "${as_root[@]}" apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1 \
      || { "${as_root[@]}" apt-get update -q >/dev/null 2>&1 \
           && "${as_root[@]}" apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1; }; } \
      || give_up "apt-get install postgresql failed"
    bin="$(find_bin)"
    [ -n "$bin" ] || give_up "postgresql installed but no server binaries under /usr/lib/postgresql"
fi

# The server refuses to run as root: run it as the `postgres` account the package creates.
run_as=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || give_up "running as root and there is no 'postgres' account to run the server"
    run_as=(runuser -u postgres --)
fi

mkdir -p "$root"
if [ "$(id -u)" = 0 ]; then chown postgres: "$root"; fi

if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data"
    "${run_as[@]}" "$bin/initdb" -D "$data" -U "$superuser" --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$root/initdb.log" 2>&1 || give_up "initdb failed: $(tail -3 "$root/initdb.log" | tr '\n' ' ')"
fi

if ! "${run_as[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$root/server.log" -w -t 60 start \
        -o "-p $port -k $root -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        >/dev/null 2>&1 || give_up "server did not start: $(tail -3 "$root/server.log" | tr '\n' ' ')"
fi

psql=("$bin/psql" -h 127.0.0.1 -p "$port" -U "$superuser" -d postgres -v ON_ERROR_STOP=1 -qtA)
ready=0
for _ in $(seq 1 30); do
    if "${psql[@]}" -c "SELECT 1" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.5
done
[ "$ready" = 1 ] || give_up "server on 127.0.0.1:$port does not answer (another server on that port?)"

if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$database'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE $database" >/dev/null || give_up "could not create database $database"
fi

rm -f "$unavailable_file"
echo "postgresql+psycopg://$superuser@127.0.0.1:$port/$database" > "$url_file"
echo "services.sh: PostgreSQL ready at $(cat "$url_file") (URL in var/ci-postgres-url)" >&2
