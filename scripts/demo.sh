#!/usr/bin/env bash
# `make demo`: the example suite (examples/shop) serially, then on 4 dagz workers with the
# OpenTelemetry trace on, then on 4 plain xdist workers without dagz (where it collides), then a
# copy of it without the dagz part of its conftests on 4 dagz workers (zero-config auto mode).
#
# Needs what `make build venv` made (the Makefile runs them first). Starts PostgreSQL and MariaDB if
# they are down (same commands as .ci/run), installs the dagz package into .venv (editable) if it is
# not there, migrates the example's base databases, then runs the four suites. Exits 0 when the
# serial run, the dagz run and the zero-config run passed; the run without dagz is expected to fail and only shown.
#
# It leaves the example's databases on the servers (kept for a warm next run: the base `shop` on
# PostgreSQL and `shop_audit` on MariaDB, and the worker copies dagz made of them, *_jw00..; the
# worker Redis indexes and vhosts dz_jw00.. of the cache and the task queue) and its logs in
# target/demo, and says so at its end. `--clean` (`make demo-clean`) removes exactly those: the
# worker copies, indexes and vhosts with `dagz db drop --base` (dagz drops only what it
# recorded or tagged), the two bases by name (only when they hold the example's
# `schema_migrations` table), and target/demo. The serial run itself leaves Redis index 0 and
# vhost / as it found them (the suite deletes its `shop:` keys and `shop.tasks.*` queues).
#
#   scripts/demo.sh                 # DEMO_WORKERS=4 DEMO_OUT=target/demo
#   scripts/demo.sh --clean         # drop what the demo left on the servers, remove target/demo
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
SUITE=$ROOT/examples/shop
WORKERS=${DEMO_WORKERS:-4}
OUT=${DEMO_OUT:-$ROOT/target/demo}
TRACE=$OUT/shop-trace.json
PYTEST_ARGS=(-q -p no:cacheprovider)

# say TEXT: ends the previous phase with its elapsed time, starts the next one with one line.
PHASE="" PHASE_T0=0
say() {
    done_phase
    PHASE=$* PHASE_T0=$(date +%s.%N)
    printf '\n=== demo: %s\n' "$PHASE"
}
done_phase() {
    [[ -n $PHASE ]] || return 0
    printf '=== demo: done in %ss: %s\n' \
        "$(awk -v a="$PHASE_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" "$PHASE"
    PHASE=""
}
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

CLEAN=0
case ${1:-} in
    "") ;;
    --clean) CLEAN=1 ;;
    *) die "unknown argument '$1': use no argument (run the demo) or --clean (remove what it left)" ;;
esac

# demo_dbs list | drop-bases: the example's databases (names from shopapp.settings, as the suite
# uses them). list: one line per server, "<server>: <base> <worker copies>…" (what exists);
# drop-bases: drops each base that holds the example's schema_migrations table.
demo_dbs() {
    (cd "$SUITE" && "$PY" - "$1" <<'PY'
import re
import sys
import urllib.parse

import MySQLdb
import psycopg
from psycopg import sql

from dagz.engines import for_engine
from shopapp.settings import load

s = load()
redis_url = urllib.parse.urlsplit(s.redis_url)
amqp_url = urllib.parse.urlsplit(s.amqp_url)
redis_index = redis_url.path.strip("/") or "0"
vhost = urllib.parse.unquote(amqp_url.path[1:]) if amqp_url.path not in ("", "/") else "/"
pg_kw = s.pg_kwargs()
my_kw = s.mysql_kwargs()
pg_kw = {k: v for k, v in pg_kw.items() if k in ("host", "port", "user", "password")}
my_kw = {k: v for k, v in my_kw.items() if k in ("host", "port", "user", "password")}


def ours(base, names):
    copy = re.compile(re.escape(base) + r"_jw\d\d")
    return sorted(n for n in names if n == base or copy.fullmatch(n))


with psycopg.connect(dbname="postgres", autocommit=True, **pg_kw) as pg:
    pg_names = ours(s.pg_database, [r[0] for r in pg.execute("SELECT datname FROM pg_database")])
    if sys.argv[1] == "drop-bases" and s.pg_database in pg_names:
        with psycopg.connect(dbname=s.pg_database, **pg_kw) as conn:
            mine = conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0]
        if mine:
            pg.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(s.pg_database))
            )
            print(f"dropped PostgreSQL {s.pg_database} (the example's base)")
        else:
            print(f"kept PostgreSQL {s.pg_database}: no schema_migrations table, not the demo's")
my = MySQLdb.connect(**my_kw)
cur = my.cursor()
cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
my_names = ours(s.mysql_database, [r[0] for r in cur.fetchall()])
if sys.argv[1] == "drop-bases" and s.mysql_database in my_names:
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.TABLES"
        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'schema_migrations'",
        (s.mysql_database,),
    )
    if cur.fetchone()[0]:
        cur.execute("DROP DATABASE `{}`".format(s.mysql_database.replace("`", "``")))
        print(f"dropped MariaDB {s.mysql_database} (the example's base)")
    else:
        print(f"kept MariaDB {s.mysql_database}: no schema_migrations table, not the demo's")
my.close()
if sys.argv[1] == "list":
    print("PostgreSQL:", " ".join(pg_names) or "-")
    print("MariaDB:", " ".join(my_names) or "-")
    # The worker indexes / vhosts dagz made of the cache's index and the broker's vhost.
    redis_kw = {"host": redis_url.hostname, "port": redis_url.port or 6379}
    owned = for_engine("redis").list_owned(**redis_kw)
    workers = [o.name for o in owned if o.stamp.base == f"index {redis_index}"]
    print(f"Redis (index {redis_index}):", " ".join(workers) or "-")
    amqp_kw = {"host": amqp_url.hostname, "port": amqp_url.port or 5672}
    amqp_kw |= {"user": amqp_url.username or "guest", "password": amqp_url.password or "guest"}
    owned = for_engine("rabbitmq").list_owned(**amqp_kw)
    workers = [o.name for o in owned if o.stamp.base == vhost]
    print(f"RabbitMQ (vhost {vhost}):", " ".join(workers) or "-")
    print("BASES", s.pg_database, s.mysql_database, redis_index, vhost)
PY
    )
}

# --- prerequisites ---------------------------------------------------------------------------------
[[ -x $PY ]] || die ".venv is missing: run \`make venv\` (or \`make demo\`, which does)"
((CLEAN)) || [[ -f target/release/libdagz.so ]] || die "target/release/libdagz.so is missing: run \`make build\`"

# The four servers answer (scripts/servers.sh starts what is down, as root, or names the command).
"$ROOT/scripts/servers.sh" || exit 1

# The dagz package (pytest plugin + Python API), editable, from this checkout.
if ! "$PY" -c 'import pathlib, sys, dagz.plugin
sys.exit(0 if pathlib.Path(dagz.plugin.__file__).resolve().is_relative_to(pathlib.Path(sys.argv[1]).resolve()) else 1)' \
    "$ROOT/shim" 2>/dev/null; then
    say "installing dagz into .venv (pip install -e .)"
    "$PY" -m pip install --disable-pip-version-check --no-input --quiet -e "$ROOT"
fi
"$PY" -c 'import sqlalchemy, psycopg, MySQLdb, requests, redis, kombu' 2>/dev/null \
    || "$PY" -m pip install --disable-pip-version-check --no-input --quiet \
        -r "$ROOT/examples/requirements.txt"

if ((CLEAN)); then
    BASES=$(demo_dbs list | grep '^BASES ') || die "cannot list the example's databases"
    read -r _ PG_BASE MY_BASE REDIS_INDEX VHOST <<<"$BASES"
    say "removing what the demo left: worker copies of $PG_BASE / $MY_BASE, Redis index $REDIS_INDEX, vhost $VHOST (dagz db drop), the bases, $OUT"
    "$ROOT/.venv/bin/dagz" db drop --base "$PG_BASE" --engine pg
    "$ROOT/.venv/bin/dagz" db drop --base "$MY_BASE" --engine mysql
    "$ROOT/.venv/bin/dagz" db drop --base "index $REDIS_INDEX" --engine redis
    "$ROOT/.venv/bin/dagz" db drop --base "$VHOST" --engine rabbitmq
    demo_dbs drop-bases
    rm -rf "$OUT"
    demo_dbs list | grep -v '^BASES ' | sed 's/^/  left: /'
    done_phase
    exit 0
fi

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
    (cd "${RUN_IN:-$SUITE}" && timeout 1200 "$PY" -m pytest "${PYTEST_ARGS[@]}" "$@") >"$OUT/$name.log" 2>&1
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

say "1/4 serial: pytest (one process, the base databases, cleaned before each test)"
run serial
SERIAL_RC=$RC SERIAL_SECS=$SECS SERIAL_RESULT=$RESULT
echo "$SERIAL_RESULT  (exit $SERIAL_RC, wall ${SERIAL_SECS}s)"

say "2/4 dagz: pytest --dagz-workers $WORKERS --dagz-trace=$TRACE"
run dagz --dagz-workers "$WORKERS" --dagz-trace="$TRACE"
DAGZ_RC=$RC DAGZ_SECS=$SECS DAGZ_RESULT=$RESULT
echo "$DAGZ_RESULT  (exit $DAGZ_RC, wall ${DAGZ_SECS}s)"
sed -n '/dagz otel/,/^trace:/p' "$OUT/dagz.log" | sed -n '1,16p'

say "3/4 without dagz: pytest -n $WORKERS -p no:dagz (every worker on the same databases, Redis index and vhost)"
run plain -n "$WORKERS" -p no:dagz
PLAIN_RC=$RC PLAIN_RESULT=$RESULT
PLAIN_FAILED=$(($(count failed "$PLAIN_RESULT") + $(count error "$PLAIN_RESULT")))
if ((PLAIN_RC != 0 && PLAIN_FAILED > 0)); then
    echo "without dagz: $PLAIN_FAILED tests failed or errored from collisions ($PLAIN_RESULT)"
else
    echo "without dagz: no collision this time ($PLAIN_RESULT, exit $PLAIN_RC)"
fi

say "4/4 zero-config: the suite without the dagz part of its conftests (no family configured, Redis/RabbitMQ tests included), pytest --dagz-workers $WORKERS"
AUTO_DIR=$OUT/shop-without-dagz
"$PY" "$ROOT/scripts/shop_without_dagz.py" "$AUTO_DIR"
RUN_IN=$AUTO_DIR run auto --dagz-workers "$WORKERS"
AUTO_RC=$RC AUTO_SECS=$SECS AUTO_RESULT=$RESULT
echo "$AUTO_RESULT  (exit $AUTO_RC, wall ${AUTO_SECS}s; no conftest configured a family: auto mode)"

# --- summary -------------------------------------------------------------------------------------------
SPEEDUP=$(awk -v s="$SERIAL_SECS" -v p="$DAGZ_SECS" 'BEGIN { if (p > 0) printf "%.2f", s / p; else print "n/a" }')
say "summary ($(nproc) cores)"
printf '  %-34s %-34s %8ss\n' "serial (pytest)" "$SERIAL_RESULT" "$SERIAL_SECS"
printf '  %-34s %-34s %8ss\n' "dagz (--dagz-workers $WORKERS)" "$DAGZ_RESULT" "$DAGZ_SECS"
printf '  %-34s %-34s\n' "no dagz (pytest -n $WORKERS)" "$PLAIN_RESULT"
printf '  %-34s %-34s %8ss\n' "zero-config (no dagz in conftest)" "$AUTO_RESULT" "$AUTO_SECS"
echo "  speedup serial / dagz: ${SPEEDUP}x (wall time of the whole pytest command)"
if [[ -s $TRACE ]]; then
    echo "  trace: $TRACE  (open it in https://ui.perfetto.dev: one lane per worker)"
else
    echo "  trace: none written (see $OUT/dagz.log)"
fi
echo "  logs:  $OUT/{serial,dagz,plain,auto}.log"
# What stays behind (kept for a warm next run), and the one command that removes it.
echo "  left on the servers (kept for a warm next run):"
demo_dbs list | grep -v '^BASES ' | sed 's/^/    /'
echo "  remove them and $OUT with: make demo-clean"

status=0
if ((SERIAL_RC != 0)); then
    echo "demo: the serial run failed (exit $SERIAL_RC); see $OUT/serial.log" >&2
    tail -n 30 "$OUT/serial.log" >&2
    status=1
fi
if ((AUTO_RC != 0)); then
    echo "demo: the zero-config run failed (exit $AUTO_RC); see $OUT/auto.log" >&2
    tail -n 30 "$OUT/auto.log" >&2
    status=1
fi
if ((DAGZ_RC != 0)); then
    echo "demo: the dagz run failed (exit $DAGZ_RC); see $OUT/dagz.log" >&2
    tail -n 30 "$OUT/dagz.log" >&2
    status=1
fi
exit "$status"
