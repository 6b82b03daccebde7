#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian machine.
#
#   scripts/test.sh                       # everything
#   scripts/test.sh --filter SyncServer   # extra arguments go to `swift test`
#
# Installs missing system packages, starts a throwaway PostgreSQL cluster in a
# temporary directory (removed on exit), exports DATABASE_URL and
# CHAT_TEST_DATABASE_URL pointing at it, then builds and runs the tests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup-system.sh

# A private cluster for this run. The directory must be reachable by the
# "postgres" user when we run as root, hence 755 (mktemp makes it 700).
PG_DIR=$(mktemp -d /tmp/chat-store-test-pg.XXXXXX)
chmod 755 "$PG_DIR"

# shellcheck disable=SC2317 # invoked through the trap
cleanup() {
    ./scripts/pg.sh stop "$PG_DIR" || true
    rm -rf "$PG_DIR"
}
trap cleanup EXIT
# Make Ctrl-C / kill go through the EXIT trap too.
trap 'exit 130' INT
trap 'exit 143' TERM

DATABASE_URL=$(PG_FAST="${PG_FAST:-1}" ./scripts/pg.sh start "$PG_DIR" | tail -n 1)
export DATABASE_URL
export CHAT_TEST_DATABASE_URL="$DATABASE_URL"
echo "test.sh: PostgreSQL at $DATABASE_URL"

start=$SECONDS
build_status=0
swift build --build-tests || build_status=$?
echo "test.sh: build took $((SECONDS - start))s"
if ((build_status != 0)); then
    echo "test.sh: build failed (exit $build_status)" >&2
    exit "$build_status"
fi

start=$SECONDS
test_status=0
swift test --skip-build --disable-xctest "$@" || test_status=$?
echo "test.sh: tests took $((SECONDS - start))s (exit $test_status)"

# The web client in headless Chromium, against the chat-server just built (skipped when
# extra arguments narrowed the Swift run, e.g. --filter).
web_status=0
if (($# == 0)); then
    start=$SECONDS
    BIN_DIR=$(swift build --show-bin-path) /usr/bin/python3 Tests/web/test_web.py || web_status=$?
    echo "test.sh: browser tests took $((SECONDS - start))s (exit $web_status)"
fi
((test_status != 0)) && exit "$test_status"
exit "$web_status"
