#!/usr/bin/env bash
# A throwaway PostgreSQL + PostGIS cluster for the tests.
#
#   env="$(bash scripts/pg.sh start [DIR])" && eval "$env"   # start; prints `export ...` lines
#   bash scripts/pg.sh stop [DIR]                             # stop it and delete DIR
#   bash scripts/pg.sh pause DIR | resume DIR                 # stop the server, keep DIR;
#                                                             # start it again, same port
#
# start: initdb in DIR (default: a new /tmp/geogrid-pg.XXXXXX; if given it must be empty or
# absent), start the server on a free port on 127.0.0.1 (no other listener, trust auth, no
# fsync), create the database geogrid_test with the postgis extension, and print on stdout:
#   export GEOGRID_PG_DIR=DIR
#   export GEOGRID_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/geogrid_test
#   export GEOGRID_TEST_PG_ADMIN_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
# The superuser is "postgres". Logs go to stderr and DIR/postgres.log.
# PostgreSQL refuses to run as root: as root the server runs as the `postgres` system user
# (Debian's postgresql package creates it); otherwise as the current user.
# stop: DIR defaults to $GEOGRID_PG_DIR. A failed start cleans up after itself.
# pause/resume (the fault tests: the database goes away under a running service and comes
# back): pause stops the server (fast shutdown: sessions are ended) and keeps the data;
# resume starts it again on the port it had.
set -euo pipefail

say() { echo "pg: $*" >&2; }
die() {
    echo "pg: ERROR: $*" >&2
    exit 1
}

MARKER=.geogrid-throwaway-cluster

# The bin directory of the newest installed PostgreSQL server.
pg_bindir() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$d" ] || continue
        d="${d#/usr/lib/postgresql/}"
        d="${d%%/*}"
        if [ -z "$best" ] || [ "$d" -gt "$best" ]; then best="$d"; fi
    done
    if [ -n "$best" ]; then
        echo "/usr/lib/postgresql/$best/bin"
    elif command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    else
        die "no PostgreSQL server found (/usr/lib/postgresql/*/bin/initdb); run scripts/setup.sh"
    fi
}

# as_owner CMD...: run CMD as the cluster's owner (postgres when we are root), in DIR.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            (cd "$DIR" && runuser -u postgres -- "$@")
        else
            local q
            printf -v q '%q ' "$@"
            (cd "$DIR" && su postgres -s /bin/sh -c "$q")
        fi
    else
        (cd "$DIR" && "$@")
    fi
}

free_port() {
    local py
    for py in python3 python; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null; then
            return 0
        fi
    done
    local p listening
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        # Captured, not piped into grep -q (which would kill ss with SIGPIPE under pipefail).
        listening="$(ss -Htln "sport = :$p" 2>/dev/null || true)"
        if [ -z "$listening" ]; then
            echo "$p"
            return 0
        fi
    done
    die "could not find a free port"
}

stop_cluster() { # stop_cluster DIR: stop the server if running, remove DIR (ours only)
    DIR="$1"
    [ -d "$DIR" ] || return 0
    if [ ! -e "$DIR/$MARKER" ]; then
        die "$DIR is not a throwaway cluster made by pg.sh (no $MARKER); not touching it"
    fi
    local bindir
    bindir="$(cat "$DIR/bindir" 2>/dev/null || pg_bindir)"
    if [ -f "$DIR/data/postmaster.pid" ]; then
        as_owner "$bindir/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >&2 ||
            as_owner "$bindir/pg_ctl" -D "$DIR/data" -m immediate -w -t 30 stop >&2 ||
            say "could not stop the server in $DIR"
    fi
    rm -rf "$DIR"
}

run_server() { # run_server BINDIR PORT: start the server of $DIR on PORT, wait until it answers
    as_owner "$1/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
        -o "-p $2 -k $DIR/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >&2
}

pause_cluster() { # pause_cluster DIR: stop the server (fast), keep DIR
    DIR="$(cd "$1" && pwd)"
    [ -e "$DIR/$MARKER" ] || die "$DIR is not a throwaway cluster made by pg.sh"
    as_owner "$(cat "$DIR/bindir")/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >&2
}

resume_cluster() { # resume_cluster DIR: start the paused server again on its port
    DIR="$(cd "$1" && pwd)"
    [ -e "$DIR/$MARKER" ] || die "$DIR is not a throwaway cluster made by pg.sh"
    run_server "$(cat "$DIR/bindir")" "$(cat "$DIR/port")"
}

start_cluster() {
    if [ -n "${1:-}" ]; then
        DIR="$1"
        mkdir -p "$DIR"
        [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty"
    else
        DIR="$(mktemp -d /tmp/geogrid-pg.XXXXXX)"
    fi
    DIR="$(cd "$DIR" && pwd)"
    touch "$DIR/$MARKER"
    # Clean up a half-made cluster if anything below fails (or we are interrupted).
    STARTED=0
    trap 'if [ "$STARTED" -eq 0 ]; then stop_cluster "$DIR" || true; fi' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    # A Unix socket's path holds at most 107 bytes (sun_path): a deep DIR (a long CI
    # checkout or --basetemp) would make the server fail obscurely; say why instead.
    local socket="$DIR/sock/.s.PGSQL.65535"
    [ "${#socket}" -le 107 ] ||
        die "the socket path $socket is ${#socket} bytes; Unix sockets allow 107: use a shorter DIR"

    local bindir
    bindir="$(pg_bindir)"
    echo "$bindir" >"$DIR/bindir"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 ||
            die "running as root but there is no 'postgres' user to run PostgreSQL as (install Debian's postgresql package, or: useradd --system postgres)"
        chown postgres: "$DIR"
    fi
    chmod 700 "$DIR"
    # The directories above DIR must be traversable by the server's user.
    as_owner test -w "$DIR" || die "the server's user cannot write to $DIR (can it reach the directories above it?)"

    mkdir -p "$DIR/sock"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$DIR/sock"

    say "initdb ($bindir) in $DIR/data"
    as_owner "$bindir/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync >"$DIR/initdb.log" 2>&1 ||
        {
            cat "$DIR/initdb.log" >&2
            die "initdb failed"
        }

    local port tries=0
    while :; do
        port="$(free_port)"
        tries=$((tries + 1))
        if run_server "$bindir" "$port"; then
            break
        fi
        tail -n 20 "$DIR/postgres.log" >&2 || true
        [ "$tries" -lt 3 ] || die "could not start PostgreSQL (log: $DIR/postgres.log)"
        say "start failed on port $port; retrying on another port"
    done
    echo "$port" >"$DIR/port"

    local psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
    "${psql[@]}" -d postgres -c 'CREATE DATABASE geogrid_test' >&2
    "${psql[@]}" -d geogrid_test -c 'CREATE EXTENSION postgis' >&2 ||
        die "CREATE EXTENSION postgis failed: is postgresql-$(basename "$(dirname "$bindir")")-postgis-3 installed?"
    say "PostgreSQL $("${psql[@]}" -d geogrid_test -At -c 'SHOW server_version') with PostGIS $("${psql[@]}" -d geogrid_test -At -c 'SELECT postgis_lib_version()') on 127.0.0.1:$port"

    STARTED=1
    echo "export GEOGRID_PG_DIR=$DIR"
    echo "export GEOGRID_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$port/geogrid_test"
    echo "export GEOGRID_TEST_PG_ADMIN_URL=postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

case "${1:-}" in
    start)
        shift
        start_cluster "$@"
        ;;
    pause | resume)
        cmd="$1"
        shift
        [ -n "${1:-}" ] || die "usage: pg.sh $cmd DIR"
        "${cmd}_cluster" "$1"
        ;;
    stop)
        shift
        target="${1:-${GEOGRID_PG_DIR:-}}"
        [ -n "$target" ] || die "usage: pg.sh stop DIR (or set GEOGRID_PG_DIR)"
        stop_cluster "$target"
        ;;
    *)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
        exit 2
        ;;
esac
