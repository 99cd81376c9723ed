#!/usr/bin/env bash
# `make deps`: the system packages the build, the tests, the demo and the benchmarks need, in one
# list. As root it installs the missing ones with apt-get; otherwise it names them and the command
# that installs them, in one line, and fails.
#
# What each package is for:
#   build-essential gcc make pkg-config  the cdylib's C toolchain, mysqlclient's and psycopg2's builds
#   libpq-dev libpq5 postgresql-client   pg_config + libpq headers (tests/c, psycopg2 from source); psql
#   libmariadb-dev libmariadb3           mysqlclient builds against it (pkg-config libmariadb)
#   mariadb-client                       mariadb, mariadb-admin, mariadb-dump (tests, demo, bench)
#   procps ca-certificates libc-bin      ps/pkill in tests; TLS roots for pip; ldd/ldconfig
#   curl redis-tools                     .ci/run: RabbitMQ management API and Redis checks
set -euo pipefail

PACKAGES=(
    build-essential gcc make pkg-config
    libpq-dev libpq5 postgresql-client
    libmariadb-dev libmariadb3 mariadb-client
    procps ca-certificates libc-bin curl redis-tools
)
# DEPS_EXTRA: more packages to require (space-separated), e.g. for a project's own tools.
read -r -a extra <<<"${DEPS_EXTRA:-}"
PACKAGES+=("${extra[@]}")

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
((${#missing[@]})) || exit 0

if ((EUID != 0)); then
    echo "deps: missing system packages: ${missing[*]} — install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "deps: installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
