#!/usr/bin/env bash
# Run the benchmarks (issue 5) in one command.
#
#   scripts/bench.sh            # the default sizes, a few minutes
#   scripts/bench.sh --quick    # small sizes, about a minute (after the build)
#   scripts/bench.sh --push-messages 20000 --json /tmp/bench.json   # extra arguments go to chat-bench
#
# Builds chat-bench and chat-server in release, starts a throwaway PostgreSQL
# cluster in a temporary directory (removed on exit), and runs chat-bench
# against it; chat-bench starts the release chat-server on 127.0.0.1 and a
# free port. The table goes to stdout, the JSON to .build/chat-bench-results.json
# unless --json says otherwise. PG_FAST=1 (the default here) runs PostgreSQL
# without fsync, like test.sh; PG_FAST=0 measures durable commits.
# Needs PostgreSQL installed (scripts/setup-system.sh installs it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    start=$SECONDS
    # Build output goes to stderr, so stdout holds only the table.
    swift build -c release --product chat-server >&2
    swift build -c release --product chat-bench >&2
    echo "bench.sh: release build took $((SECONDS - start))s" >&2
fi
BIN_DIR=$(swift build -c release --show-bin-path)

# The directory must be reachable by the "postgres" user when we run as root.
PG_DIR=$(mktemp -d /tmp/chat-store-bench-pg.XXXXXX)
chmod 755 "$PG_DIR"

# shellcheck disable=SC2317 # invoked through the trap
cleanup() {
    ./scripts/pg.sh stop "$PG_DIR" >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DATABASE_URL=$(PG_FAST="${PG_FAST:-1}" ./scripts/pg.sh start "$PG_DIR" | tail -n 1)
echo "bench.sh: PostgreSQL at $DATABASE_URL (PG_FAST=${PG_FAST:-1})" >&2

"$BIN_DIR/chat-bench" --database-url "$DATABASE_URL" --server-binary "$BIN_DIR/chat-server" "$@"
