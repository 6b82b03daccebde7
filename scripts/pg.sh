#!/usr/bin/env bash
# Manage a private PostgreSQL cluster that lives entirely inside one directory.
#
# Usage:
#   scripts/pg.sh start DIR          create (if needed) and start the cluster in DIR,
#                                    print its DATABASE_URL as the last stdout line
#   scripts/pg.sh stop DIR           stop the cluster (no error if it is not running)
#   scripts/pg.sh url DIR            print the DATABASE_URL of the running cluster
#   scripts/pg.sh createdb DIR NAME  create database NAME (if missing), print its URL
#
# Layout of DIR:
#   data/        the cluster (PGDATA)
#   sock/        unix socket directory
#   server.log   server log (also receives pg_ctl's output)
#   port         TCP port the running server listens on (127.0.0.1 only)
#   env          "export DATABASE_URL=postgres://chat@127.0.0.1:PORT/chat"
#
# The cluster has one superuser, "chat", with trust authentication, and
# accepts TCP connections on 127.0.0.1 only.
#
# Environment:
#   PG_FAST=1 (default)  fsync, synchronous_commit and full_page_writes off:
#                        fast, but not crash-safe. Set PG_FAST=0 for data that
#                        should survive an OS crash. Applied on every start.
#
# PostgreSQL refuses to run as root: when this script runs as root it creates
# the system user "postgres" if needed, hands DIR to it and runs the server
# tools through runuser. Otherwise everything runs as the current user.
set -euo pipefail

readonly DB_SUPERUSER=chat
readonly DEFAULT_DB=chat
readonly START_TIMEOUT=30
readonly START_ATTEMPTS=3
PG_FAST=${PG_FAST:-1}

IS_ROOT=0
[[ "$(id -u)" -eq 0 ]] && IS_ROOT=1

log() { echo "pg.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

usage() {
    sed -n '4,9s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

# ---------------------------------------------------------------------------
# Locating the PostgreSQL binaries
# ---------------------------------------------------------------------------

# Sets BINDIR, PG_CTL, INITDB, PSQL and PG_ISREADY.
# $1 (optional): major version of an existing cluster, preferred if installed.
find_binaries() {
    local wanted=${1:-} candidates=()
    BINDIR=""
    if [[ -n "$wanted" && -x "/usr/lib/postgresql/$wanted/bin/initdb" ]]; then
        BINDIR="/usr/lib/postgresql/$wanted/bin"
    fi
    if [[ -z "$BINDIR" ]]; then
        # Debian layout: the highest installed version wins.
        shopt -s nullglob
        candidates=(/usr/lib/postgresql/*/bin/initdb)
        shopt -u nullglob
        if ((${#candidates[@]} > 0)); then
            BINDIR=$(dirname "$(printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1)")
        fi
    fi
    if [[ -z "$BINDIR" ]] && command -v pg_config >/dev/null 2>&1; then
        local dir
        dir=$(pg_config --bindir 2>/dev/null || true)
        [[ -n "$dir" && -x "$dir/initdb" ]] && BINDIR=$dir
    fi
    if [[ -z "$BINDIR" ]] && command -v initdb >/dev/null 2>&1; then
        BINDIR=$(dirname "$(command -v initdb)")
    fi
    [[ -n "$BINDIR" ]] ||
        die "no PostgreSQL server binaries found (initdb); run scripts/setup-system.sh or install the 'postgresql' package."

    PG_CTL="$BINDIR/pg_ctl"
    INITDB="$BINDIR/initdb"
    # Client tools may live elsewhere (e.g. only in PATH).
    PSQL="$BINDIR/psql"
    [[ -x "$PSQL" ]] || PSQL=$(command -v psql || true)
    PG_ISREADY="$BINDIR/pg_isready"
    [[ -x "$PG_ISREADY" ]] || PG_ISREADY=$(command -v pg_isready || true)
    [[ -n "$PSQL" && -n "$PG_ISREADY" ]] || die "psql/pg_isready not found; install the PostgreSQL client tools."
}

# Major version of the binaries in BINDIR, e.g. "15".
binaries_major_version() {
    "$BINDIR/postgres" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/'
}

# ---------------------------------------------------------------------------
# Running things as the cluster owner
# ---------------------------------------------------------------------------

# Close every file descriptor above 2 in the current (sub)shell, so that a
# long-lived server does not keep a caller's pipes or lock files open.
close_extra_fds() {
    local path fd
    [[ -d /proc/$BASHPID/fd ]] || return 0
    for path in /proc/"$BASHPID"/fd/*; do
        fd=${path##*/}
        [[ "$fd" =~ ^[0-9]+$ ]] || continue
        if ((fd > 2)); then
            eval "exec ${fd}>&-"
        fi
    done
}

# Run a command as the cluster owner: "postgres" when we are root, else us.
as_pg() {
    (
        close_extra_fds
        if ((IS_ROOT)); then
            exec runuser -u postgres -- "$@"
        else
            exec "$@"
        fi
    )
}

# Create the "postgres" system user if it is missing (root only).
ensure_pg_user() {
    id -u postgres >/dev/null 2>&1 && return 0
    log "creating system user 'postgres'"
    local group_opt=(--user-group)
    getent group postgres >/dev/null 2>&1 && group_opt=(--gid postgres)
    useradd --system "${group_opt[@]}" --no-create-home \
        --home-dir /var/lib/postgresql --shell /bin/sh postgres
}

# ---------------------------------------------------------------------------
# Paths and small helpers
# ---------------------------------------------------------------------------

# Sets DIR (absolute) and the paths inside it. $1: DIR, $2: "create" to mkdir.
set_paths() {
    local dir=$1
    if [[ "${2:-}" == create ]]; then
        mkdir -p "$dir"
    fi
    if [[ -d "$dir" ]]; then
        DIR=$(cd "$dir" && pwd -P)
    else
        DIR=$dir
    fi
    DATA="$DIR/data"
    SOCK="$DIR/sock"
    LOG="$DIR/server.log"
    PORT_FILE="$DIR/port"
    ENV_FILE="$DIR/env"
    CONF="$DATA/chat-store.conf"
}

cluster_exists() { [[ -f "$DATA/PG_VERSION" ]]; }

# True if the cluster in DATA has a live postmaster.
is_running() {
    cluster_exists || return 1
    as_pg "$PG_CTL" status -D "$DATA" >/dev/null 2>&1
}

# Port of the running cluster: DIR/port, else line 4 of postmaster.pid.
current_port() {
    local port=""
    [[ -f "$PORT_FILE" ]] && port=$(<"$PORT_FILE")
    if ! [[ "$port" =~ ^[0-9]+$ ]] && [[ -f "$DATA/postmaster.pid" ]]; then
        port=$(sed -n 4p "$DATA/postmaster.pid")
    fi
    [[ "$port" =~ ^[0-9]+$ ]] || die "cannot tell the port of the cluster in $DIR"
    echo "$port"
}

url_for() { echo "postgres://$DB_SUPERUSER@127.0.0.1:$1/$2"; }

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Print a free TCP port on 127.0.0.1. $1 (optional): preferred port.
free_port() {
    local preferred=${1:-} port
    if [[ "$preferred" =~ ^[0-9]+$ ]] && ! port_in_use "$preferred"; then
        echo "$preferred"
        return 0
    fi
    # Let the kernel pick one.
    if command -v python3 >/dev/null 2>&1 &&
        port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null) &&
        [[ "$port" =~ ^[0-9]+$ ]]; then
        echo "$port"
        return 0
    fi
    # Fallback: scan 54320-54999 from a random start (parallel runs collide less).
    local first=54320 count=680 i
    local offset=$((RANDOM % count))
    for ((i = 0; i < count; i++)); do
        port=$((first + (offset + i) % count))
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    die "no free TCP port found in 54320-54999"
}

psql_admin() {
    "$PSQL" -X -q -t -A -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$1" -U "$DB_SUPERUSER" -d postgres -c "$2"
}

# True if database $2 exists on the server at port $1.
database_exists() {
    [[ "$(psql_admin "$1" "SELECT 1 FROM pg_database WHERE datname = '$2'")" == 1 ]]
}

# Create database $2 on the server at port $1 unless it exists.
ensure_database() {
    local port=$1 name=$2
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
        die "invalid database name '$name' (letters, digits and _ only)"
    database_exists "$port" "$name" && return 0
    # Tolerate a concurrent creator: re-check before failing.
    psql_admin "$port" "CREATE DATABASE \"$name\"" >/dev/null 2>&1 ||
        database_exists "$port" "$name" ||
        die "could not create database '$name'"
}

# Wait until the server at port $1 accepts connections, or fail.
wait_ready() {
    local port=$1 deadline=$((SECONDS + START_TIMEOUT))
    until "$PG_ISREADY" -q -t 1 -h 127.0.0.1 -p "$port" -U "$DB_SUPERUSER" -d postgres; do
        if ((SECONDS >= deadline)); then
            log "server did not accept connections on port $port within ${START_TIMEOUT}s; last lines of $LOG:"
            tail -n 30 "$LOG" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
}

# Write a file as the cluster owner from stdin. $1: path, $2: "append" to append.
write_as_pg() {
    if [[ "${2:-}" == append ]]; then
        as_pg tee -a "$1" >/dev/null
    else
        as_pg tee "$1" >/dev/null
    fi
}

# Atomically write DIR/port and DIR/env for port $1.
write_port_and_env() {
    local port=$1
    printf '%s\n' "$port" >"$PORT_FILE.tmp"
    mv -f "$PORT_FILE.tmp" "$PORT_FILE"
    printf 'export DATABASE_URL=%s\n' "$(url_for "$port" "$DEFAULT_DB")" >"$ENV_FILE.tmp"
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------
# Cluster creation and server start
# ---------------------------------------------------------------------------

init_cluster() {
    if [[ -e "$DATA" ]]; then
        # DATA exists without PG_VERSION: a previous initdb was interrupted.
        log "removing incomplete cluster in $DATA"
        rm -rf "$DATA"
    fi
    local locale=C
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
        locale=C.UTF-8
    fi
    local args=(--pgdata="$DATA" --auth=trust --username="$DB_SUPERUSER"
        --encoding=UTF8 --locale="$locale")
    [[ "$PG_FAST" == 1 ]] && args+=(--no-sync)

    log "initializing cluster in $DATA (locale $locale)"
    if ! as_pg "$INITDB" "${args[@]}" >"$DIR/initdb.log" 2>&1; then
        log "initdb failed; last lines of $DIR/initdb.log:"
        tail -n 30 "$DIR/initdb.log" >&2 || true
        exit 1
    fi
    # Our per-start settings live in chat-store.conf, included last so they win.
    echo "include_if_exists = 'chat-store.conf'" | write_as_pg "$DATA/postgresql.conf" append
}

# (Re)write DATA/chat-store.conf for port $1.
write_server_conf() {
    local port=$1 socket_dirs=$SOCK
    # A unix socket path must fit in ~107 bytes; we connect over TCP anyway.
    if ((${#SOCK} + 20 > 100)); then
        socket_dirs=""
    fi
    {
        echo "# Written by scripts/pg.sh on every start; edits are overwritten."
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '${socket_dirs//\'/\'\'}'"
        echo "max_connections = 200"
        if [[ "$PG_FAST" == 1 ]]; then
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
    } | write_as_pg "$CONF"
}

# Start the server on port $1; returns non-zero if it did not come up.
start_server() {
    local port=$1
    write_server_conf "$port"
    # stdin from /dev/null, output to the log, fds > 2 closed (as_pg): the
    # server must not hold on to anything of the caller's. pg_ctl's own few
    # lines and the server's log share the file on purpose (both append).
    # shellcheck disable=SC2094
    as_pg "$PG_CTL" start -D "$DATA" -l "$LOG" -w -t "$START_TIMEOUT" -s \
        </dev/null >>"$LOG" 2>&1
}

cmd_start() {
    [[ $# -eq 1 ]] || usage
    set_paths "$1" create
    cd /

    if ((IS_ROOT)); then
        ensure_pg_user
        chown postgres: "$DIR"
        # shellcheck disable=SC2016 # $1 is expanded by the inner sh
        as_pg sh -c 'test -w "$1" && test -x "$1"' sh "$DIR" ||
            die "user 'postgres' cannot write $DIR (is a parent directory not searchable by others?); use a directory such as one under /tmp."
    fi

    # Serialize concurrent starts on the same DIR (fd 9 is not passed to the server).
    if command -v flock >/dev/null 2>&1; then
        exec 9>>"$DIR/.lock"
        flock 9
    fi

    local version=""
    cluster_exists && version=$(<"$DATA/PG_VERSION")
    find_binaries "$version"

    local port
    if is_running; then
        port=$(current_port)
        log "reusing running cluster in $DIR on port $port"
        wait_ready "$port"
    else
        if cluster_exists; then
            local have
            have=$(binaries_major_version)
            [[ "$have" == "$version" ]] ||
                die "the cluster in $DATA is PostgreSQL $version but only PostgreSQL $have binaries were found; remove $DATA to recreate it."
        else
            init_cluster
        fi
        as_pg mkdir -p "$SOCK"
        as_pg touch "$LOG"

        local previous="" attempt log_offset
        [[ -f "$PORT_FILE" ]] && previous=$(<"$PORT_FILE")
        for ((attempt = 1; ; attempt++)); do
            port=$(free_port "$previous")
            previous=""
            log_offset=$(stat -c %s "$LOG")
            log "starting PostgreSQL on 127.0.0.1:$port"
            if start_server "$port"; then
                break
            fi
            # Make sure a half-started server does not linger.
            as_pg "$PG_CTL" stop -D "$DATA" -m immediate -s </dev/null >/dev/null 2>&1 || true
            if ((attempt < START_ATTEMPTS)) &&
                tail -c +"$((log_offset + 1))" "$LOG" | grep -q 'Address already in use'; then
                log "port $port was taken meanwhile; retrying with another port"
                continue
            fi
            log "server failed to start; last lines of $LOG:"
            tail -n 30 "$LOG" >&2 || true
            exit 1
        done
        wait_ready "$port"
    fi

    ensure_database "$port" "$DEFAULT_DB"
    write_port_and_env "$port"
    url_for "$port" "$DEFAULT_DB"
}

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    set_paths "$1"
    cd /
    cluster_exists || return 0
    find_binaries "$(<"$DATA/PG_VERSION")"
    is_running || return 0
    log "stopping cluster in $DIR"
    if ! as_pg "$PG_CTL" stop -D "$DATA" -m fast -w -t 60 -s </dev/null >/dev/null 2>&1; then
        log "fast shutdown timed out; forcing an immediate shutdown"
        as_pg "$PG_CTL" stop -D "$DATA" -m immediate -w -t 30 -s </dev/null >/dev/null 2>&1 || true
    fi
    ! is_running || die "could not stop the cluster in $DIR"
}

# Shared by url/createdb: fail unless the cluster in DIR is running.
require_running() {
    set_paths "$1"
    cd /
    cluster_exists || die "no cluster in $DIR (run: scripts/pg.sh start $DIR)"
    find_binaries "$(<"$DATA/PG_VERSION")"
    is_running || die "the cluster in $DIR is not running (run: scripts/pg.sh start $DIR)"
}

cmd_url() {
    [[ $# -eq 1 ]] || usage
    require_running "$1"
    local port
    port=$(current_port)
    url_for "$port" "$DEFAULT_DB"
}

cmd_createdb() {
    [[ $# -eq 2 ]] || usage
    require_running "$1"
    local port
    port=$(current_port)
    ensure_database "$port" "$2"
    url_for "$port" "$2"
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd=$1
    shift
    case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    url) cmd_url "$@" ;;
    createdb) cmd_createdb "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"
