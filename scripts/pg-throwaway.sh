#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for the test suite.
#
#   scripts/pg-throwaway.sh start   # prints ONLY the SQLAlchemy URL on stdout
#   scripts/pg-throwaway.sh stop    # stops the cluster, removes its directory
#   scripts/pg-throwaway.sh url     # prints the URL of the recorded cluster
#
# `start` creates a fresh cluster in a temp dir (mktemp -d /tmp/portal-pg.XXXXXX)
# with initdb from /usr/lib/postgresql/<highest version>/bin, listening only on
# 127.0.0.1 on a free port, trust auth, fsync off, and creates the superuser
# role `portal` and the database `portal_test` owned by it. The URL printed is
#   postgresql+psycopg://portal@127.0.0.1:PORT/portal_test
# Everything else (progress, server output) goes to stderr.
#
# When run as root, the server runs as the `postgres` system user (PostgreSQL
# refuses to run as root), which owns the temp dir.
#
# State (data dir, port, ...) is recorded in $PG_THROWAWAY_STATE, by default
# /tmp/portal-pg-<uid>-<hash of this checkout's path>.state, so that `stop`
# finds the cluster. Use distinct PG_THROWAWAY_STATE values to run several
# clusters at once (the Makefile does so).
#
# Environment:
#   PG_THROWAWAY_STATE   state file (see above)
#   PG_BINDIR            PostgreSQL bin dir (default: highest installed version)
#   PG_MAX_CONNECTIONS   max_connections (default 200)
set -euo pipefail

log() { printf 'pg-throwaway: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
default_state="/tmp/portal-pg-$(id -u)-$(printf '%s' "$repo_root" | cksum | cut -d' ' -f1).state"
state_file=${PG_THROWAWAY_STATE:-$default_state}

DB_NAME=portal_test
DB_ROLE=portal

find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        [ -x "$PG_BINDIR/initdb" ] || die "PG_BINDIR=$PG_BINDIR has no initdb"
        printf '%s\n' "$PG_BINDIR"
        return
    fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
        die "no initdb under /usr/lib/postgresql/*/bin (run scripts/ensure-system-packages.sh)"
    fi
    printf '%s\n' "$d"
}

free_port() {
    local py
    py=$(command -v python3 || command -v python || true)
    [ -n "$py" ] || die "python3 is needed to pick a free port"
    "$py" - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# Run a PostgreSQL server-side command as the right user, from inside the
# cluster dir (the postgres user may not be able to read the caller's cwd).
# Callers must redirect its stdout: our stdout is reserved for the URL.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

read_state() {
    [ -f "$state_file" ] || return 1
    # shellcheck disable=SC1090
    . "$state_file"
    [ -n "${PGT_DIR:-}" ]
}

url_of() { printf 'postgresql+psycopg://%s@127.0.0.1:%s/%s\n' "$DB_ROLE" "$1" "$DB_NAME"; }

cmd_start() {
    if read_state; then
        if [ -d "$PGT_DIR" ]; then
            die "a cluster is already recorded in $state_file ($PGT_DIR, port $PGT_PORT); run '$0 stop' first"
        fi
        log "removing stale state file $state_file"
        rm -f "$state_file"
    fi

    local bindir port attempt
    bindir=$(find_bindir)
    dir=$(mktemp -d /tmp/portal-pg.XXXXXX)
    local data="$dir/data" logfile="$dir/server.log"

    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || { rm -rf "$dir"; die "running as root but there is no 'postgres' system user"; }
        chown postgres: "$dir"
    fi
    chmod 700 "$dir"

    # From here on, clean up on any failure.
    started=0
    trap 'rc=$?; if [ $rc -ne 0 ]; then
            log "start failed (exit $rc)"
            [ -f "$logfile" ] && { log "server log tail:"; tail -n 40 "$logfile" >&2 || true; }
            [ "$started" = 1 ] && as_pg "$bindir/pg_ctl" -D "$data" -m immediate stop >&2 || true
            rm -rf "$dir"; rm -f "$state_file"
          fi' EXIT
    trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP

    log "initdb ($bindir) in $data"
    if ! as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed"
    fi

    cat >>"$data/postgresql.conf" <<EOF

# --- throwaway test cluster (scripts/pg-throwaway.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = ${PG_MAX_CONNECTIONS:-200}
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
archive_mode = off
checkpoint_timeout = 1h
max_wal_size = 1GB
autovacuum = off
jit = off
log_min_messages = warning
timezone = 'UTC'
EOF

    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        log "starting on 127.0.0.1:$port (attempt $attempt)"
        if as_pg "$bindir/pg_ctl" -D "$data" -l "$logfile" -o "-p $port" -w -t 60 start >&2; then
            started=1
            break
        fi
        log "start on port $port failed; server log:"
        tail -n 20 "$logfile" >&2 || true
    done
    [ "$started" = 1 ] || die "could not start PostgreSQL"

    {
        printf 'PGT_DIR=%q\n' "$dir"
        printf 'PGT_PORT=%q\n' "$port"
        printf 'PGT_BINDIR=%q\n' "$bindir"
    } >"$state_file"

    "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -c "CREATE ROLE $DB_ROLE LOGIN SUPERUSER" \
        -c "CREATE DATABASE $DB_NAME OWNER $DB_ROLE" >&2

    trap - EXIT INT TERM HUP
    log "ready: data $dir, port $port, state $state_file"
    url_of "$port"
}

cmd_stop() {
    if ! read_state; then
        log "no cluster recorded in $state_file; nothing to stop"
        return 0
    fi
    dir=$PGT_DIR
    local data="$dir/data"
    if [ -f "$data/postmaster.pid" ]; then
        log "stopping cluster in $dir (port $PGT_PORT)"
        as_pg "$PGT_BINDIR/pg_ctl" -D "$data" -m immediate -w -t 30 stop >&2 \
            || log "pg_ctl stop failed (already stopped?)"
    fi
    case "$dir" in
        /tmp/portal-pg.*) rm -rf "$dir" ;;
        *) log "not removing unexpected directory $dir" ;;
    esac
    rm -f "$state_file"
    log "stopped and removed $dir"
}

cmd_url() {
    read_state || die "no cluster recorded in $state_file"
    url_of "$PGT_PORT"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    url) cmd_url ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
