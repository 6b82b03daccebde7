#!/usr/bin/env bash
# Make sure the system packages this project needs are installed.
#
# Idempotent and quiet when everything is already present. On Debian/Ubuntu
# as root it installs whatever is missing with apt-get; as a normal user it
# names the missing packages and the command to install them, then fails.
#
# Needed:
#   libsqlite3-dev        SQLite headers (LocalStore / GRDB)
#   libpq-dev             PostgreSQL client library headers
#   libcurl4-openssl-dev  libcurl headers (Foundation networking)
#   postgresql            PostgreSQL server binaries (initdb, pg_ctl, ...)
#   chromium, chromium-driver, python3-selenium
#                         the browser tests of the web client (scripts/test.sh)
#   swift                 the Swift toolchain (not installable from apt)
set -euo pipefail

# True if the Debian package is fully installed ("install ok installed").
# A package that was removed but left config files behind does not count.
package_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

# True if some PostgreSQL server version is installed in the Debian layout.
postgres_server_present() {
    local initdb
    for initdb in /usr/lib/postgresql/*/bin/initdb; do
        [[ -x "$initdb" ]] && return 0
    done
    return 1
}

missing=()
if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
    for pkg in libsqlite3-dev libpq-dev libcurl4-openssl-dev chromium chromium-driver python3-selenium; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    postgres_server_present || missing+=(postgresql)
fi

if ((${#missing[@]} > 0)); then
    if [[ "$(id -u)" -eq 0 ]]; then
        echo "setup-system: installing ${missing[*]}" >&2
        # Quiet update/install; errors still reach stderr and stop the script.
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    else
        echo "setup-system: missing system packages ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "setup-system: the Swift toolchain ('swift') is not on PATH; install it from https://www.swift.org/install/ and add its usr/bin to PATH." >&2
    exit 1
fi
