#!/usr/bin/env bash
# Run the chat server on a fresh Debian machine.
#
#   scripts/run.sh        build, migrate, create a dev user once, serve
#   scripts/run.sh stop   stop the development PostgreSQL cluster
#
# Data lives under .data/ in the repository and is reused across runs:
#   .data/postgres   PostgreSQL cluster (override with CHAT_PG_DIR); as root it is
#                    /var/lib/chat-store/postgres-<repo hash> instead, since the
#                    postgres user may not be able to enter a checkout under /root
#   .data/dev-token  API token of the "dev" user
#
# Environment: CHAT_PORT (default 8787) is the HTTP port of the server.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd -P)

if [[ $(id -u) -eq 0 ]]; then
    default_pg_dir=/var/lib/chat-store/postgres-$(printf '%s' "$REPO" | md5sum | cut -c1-8)
else
    default_pg_dir=$REPO/.data/postgres
fi
PG_DIR=${CHAT_PG_DIR:-$default_pg_dir}
TOKEN_FILE="$REPO/.data/dev-token"
PORT=${CHAT_PORT:-8787}
# Development data should survive a crash: keep fsync on unless asked.
export PG_FAST=${PG_FAST:-0}

if [[ "${1:-}" == stop ]]; then
    exec ./scripts/pg.sh stop "$PG_DIR"
elif [[ $# -gt 0 ]]; then
    echo "usage: scripts/run.sh [stop]" >&2
    exit 2
fi

./scripts/setup-system.sh

# Start (or reuse) the persistent cluster.
mkdir -p "$REPO/.data" "$(dirname "$PG_DIR")"
DATABASE_URL=$(./scripts/pg.sh start "$PG_DIR" | tail -n 1)
export DATABASE_URL

swift build -c release --product chat-server
swift build -c release --product chat-cli

SERVER=.build/release/chat-server
CLI=.build/release/chat-cli

"$SERVER" migrate --database-url "$DATABASE_URL"

# Create the development user once; its token is the last stdout line.
if [[ ! -s "$TOKEN_FILE" ]]; then
    token=$("$SERVER" create-user --database-url "$DATABASE_URL" --name dev | tail -n 1)
    if [[ -z "$token" ]]; then
        echo "run.sh: create-user printed no token" >&2
        exit 1
    fi
    (
        umask 077
        printf '%s\n' "$token" >"$TOKEN_FILE"
    )
    chmod 600 "$TOKEN_FILE"
fi
token=$(<"$TOKEN_FILE")

cat <<INFO

Server: http://127.0.0.1:$PORT
Web client: http://127.0.0.1:$PORT/  (sign in with the token below)
Token: $token
In another terminal:
  $CLI configure --server http://127.0.0.1:$PORT --token $token
  $CLI new "My first session"
  $CLI sync
(Stop the database later with: scripts/run.sh stop)

INFO

exec "$SERVER" serve --database-url "$DATABASE_URL" --host 127.0.0.1 --port "$PORT"
