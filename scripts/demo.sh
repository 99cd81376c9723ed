#!/usr/bin/env bash
# `make demo`: the example suite (examples/shop) serially, then on 4 dagz workers with the
# OpenTelemetry trace on, then on 4 plain xdist workers without dagz (where it collides).
#
# Needs what `make build venv` made (the Makefile runs them first). Starts PostgreSQL and MariaDB if
# they are down (same commands as .ci/run), installs the dagz package into .venv (editable) if it is
# not there, migrates the example's base databases, then runs the three suites. Exits 0 when the
# serial run and the dagz run both passed; the run without dagz is expected to fail and only shown.
#
#   scripts/demo.sh                 # DEMO_WORKERS=4 DEMO_OUT=target/demo
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
SUITE=$ROOT/examples/shop
WORKERS=${DEMO_WORKERS:-4}
OUT=${DEMO_OUT:-$ROOT/target/demo}
TRACE=$OUT/shop-trace.json
PYTEST_ARGS=(-q -p no:cacheprovider)

say() { printf '\n=== demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# --- prerequisites ---------------------------------------------------------------------------------
[[ -x $PY ]] || die ".venv is missing: run \`make venv\` (or \`make demo\`, which does)"
[[ -f target/release/libdagz.so ]] || die "target/release/libdagz.so is missing: run \`make build\`"

wait_for() { # wait_for NAME TIMEOUT_S CMD...
    local name=$1 timeout=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$name did not answer within ${timeout}s"
        sleep 1
    done
}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL"
    # shellcheck disable=SC2046
    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start || true
fi
wait_for PostgreSQL 60 pg_isready -q -h 127.0.0.1 -p 5432 -U postgres

if ! mariadb-admin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; then
    say "starting MariaDB"
    install -d -o mysql -g mysql /run/mysqld
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
wait_for MariaDB 60 mariadb-admin -h 127.0.0.1 -P 3306 -u root ping

# The dagz package (pytest plugin + Python API), editable, from this checkout.
if ! "$PY" -c 'import pathlib, sys, dagz.plugin
sys.exit(0 if pathlib.Path(dagz.plugin.__file__).resolve().is_relative_to(pathlib.Path(sys.argv[1]).resolve()) else 1)' \
    "$ROOT/shim" 2>/dev/null; then
    say "installing dagz into .venv (pip install -e .)"
    "$PY" -m pip install --disable-pip-version-check --no-input --quiet -e "$ROOT"
fi
"$PY" -c 'import sqlalchemy, psycopg, MySQLdb, requests' 2>/dev/null \
    || "$PY" -m pip install --disable-pip-version-check --no-input --quiet \
        -r "$ROOT/examples/requirements.txt"

mkdir -p "$OUT"
rm -f "$TRACE"

say "migrating the base databases (shop on PostgreSQL, shop_audit on MariaDB)"
(cd "$SUITE" && "$PY" -m shopapp.migrate)

# --- the runs ----------------------------------------------------------------------------------------
# run NAME ARGS... : runs the suite, log in $OUT/NAME.log; sets RC, SECS and RESULT (pytest's last
# line, e.g. "271 passed in 27.31s").
run() {
    local name=$1
    shift
    local t0 t1
    t0=$(date +%s.%N)
    set +e
    (cd "$SUITE" && timeout 1200 "$PY" -m pytest "${PYTEST_ARGS[@]}" "$@") >"$OUT/$name.log" 2>&1
    RC=$?
    set -e
    t1=$(date +%s.%N)
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    RESULT=$(grep -E '^=*\s*[0-9]+ (passed|failed|errors?)' "$OUT/$name.log" | tail -n 1 | tr -d '=' |
        sed -E 's/^ +| +$//g')
    [[ -n $RESULT ]] || RESULT="no result line (exit $RC)"
}

count() { # count WORD "RESULT" -> the number before WORD, or 0
    local n
    n=$(grep -oE "[0-9]+ $1" <<<"$2" | head -n 1 | cut -d' ' -f1)
    echo "${n:-0}"
}

say "1/3 serial: pytest (one process, the base databases, cleaned before each test)"
run serial
SERIAL_RC=$RC SERIAL_SECS=$SECS SERIAL_RESULT=$RESULT
echo "$SERIAL_RESULT  (exit $SERIAL_RC, wall ${SERIAL_SECS}s)"

say "2/3 dagz: pytest --dagz-workers $WORKERS --dagz-trace=$TRACE"
run dagz --dagz-workers "$WORKERS" --dagz-trace="$TRACE"
DAGZ_RC=$RC DAGZ_SECS=$SECS DAGZ_RESULT=$RESULT
echo "$DAGZ_RESULT  (exit $DAGZ_RC, wall ${DAGZ_SECS}s)"
sed -n '/dagz otel/,/^trace:/p' "$OUT/dagz.log" | sed -n '1,16p'

say "3/3 without dagz: pytest -n $WORKERS -p no:dagz (every worker on the same two databases)"
run plain -n "$WORKERS" -p no:dagz
PLAIN_RC=$RC PLAIN_RESULT=$RESULT
PLAIN_FAILED=$(($(count failed "$PLAIN_RESULT") + $(count error "$PLAIN_RESULT")))
if ((PLAIN_RC != 0 && PLAIN_FAILED > 0)); then
    echo "without dagz: $PLAIN_FAILED tests failed or errored from collisions ($PLAIN_RESULT)"
else
    echo "without dagz: no collision this time ($PLAIN_RESULT, exit $PLAIN_RC)"
fi

# --- summary -------------------------------------------------------------------------------------------
SPEEDUP=$(awk -v s="$SERIAL_SECS" -v p="$DAGZ_SECS" 'BEGIN { if (p > 0) printf "%.2f", s / p; else print "n/a" }')
say "summary ($(nproc) cores)"
printf '  %-34s %-34s %8ss\n' "serial (pytest)" "$SERIAL_RESULT" "$SERIAL_SECS"
printf '  %-34s %-34s %8ss\n' "dagz (--dagz-workers $WORKERS)" "$DAGZ_RESULT" "$DAGZ_SECS"
printf '  %-34s %-34s\n' "no dagz (pytest -n $WORKERS)" "$PLAIN_RESULT"
echo "  speedup serial / dagz: ${SPEEDUP}x (wall time of the whole pytest command)"
if [[ -s $TRACE ]]; then
    echo "  trace: $TRACE  (open it in https://ui.perfetto.dev: one lane per worker)"
else
    echo "  trace: none written (see $OUT/dagz.log)"
fi
echo "  logs:  $OUT/{serial,dagz,plain}.log"

status=0
if ((SERIAL_RC != 0)); then
    echo "demo: the serial run failed (exit $SERIAL_RC); see $OUT/serial.log" >&2
    tail -n 30 "$OUT/serial.log" >&2
    status=1
fi
if ((DAGZ_RC != 0)); then
    echo "demo: the dagz run failed (exit $DAGZ_RC); see $OUT/dagz.log" >&2
    tail -n 30 "$OUT/dagz.log" >&2
    status=1
fi
exit "$status"
