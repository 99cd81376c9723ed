#!/usr/bin/env bash
# Instructions the shim adds per hooked call, counted by callgrind (deterministic, unlike time):
# the same workload with and without LD_PRELOAD=libdagz.so, side by side in one run; the
# difference divided by the number of calls. DAGZ_WORKER=3 so connects are really rerouted.
set -euo pipefail
cd "$(dirname "$0")/.."
SHIM=$PWD/target/release/libdagz.so
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
gcc -O2 -o "$OUT/hook_cost" bench/hook_cost.c $(pkg-config --cflags --libs libpq libmariadb)
psql -h 127.0.0.1 -U postgres -qAtc "select 1 from pg_database where datname='myapp_jw03'" | grep -q 1 \
  || { createdb -h 127.0.0.1 -U postgres myapp 2>/dev/null || true; createdb -h 127.0.0.1 -U postgres myapp_jw03; }
mariadb -h 127.0.0.1 -u root -e 'create database if not exists myapp; create database if not exists myapp_jw03'

count() { # count PRELOAD MODE N [VAR=VALUE] -> total instructions (Ir)
  local pre=$1 mode=$2 n=$3 extra=${4:-} f="$OUT/cg.$RANDOM"
  env ${pre:+LD_PRELOAD=$pre} DAGZ_WORKER=3 $extra valgrind --tool=callgrind --callgrind-out-file="$f" \
    "$OUT/hook_cost" "$mode" "$n" >/dev/null 2>&1
  grep -E '^(summary|totals):' "$f" | head -1 | awk '{print $2}'
}

printf '%-32s %14s %14s %12s\n' "workload" "Ir without" "Ir with dagz" "added/call"
# targets (issues 2, 3, 11): pg rewrite <= 5000, pg pass-through <= 500, mysql_query <= 100.
# pg_pass: kept by the policy (a system database), which needs the conninfo parsed;
# "pg DAGZ_DISABLE=pg": kept before parsing (engine disabled), like a thread bypass.
for spec in "pg 200" "pg_pass 200" "pg 200 DAGZ_DISABLE=pg" "mysql_connect 200" "mysql_query 5000"; do
  set -- $spec
  mode=$1 n=$2 extra=${3:-}
  # one extra call per run cancels the one-time costs (lazy policy load, first resolution)
  base1=$(count "" "$mode" 1 "$extra"); base=$(count "" "$mode" $((n + 1)) "$extra")
  with1=$(count "$SHIM" "$mode" 1 "$extra"); with=$(count "$SHIM" "$mode" $((n + 1)) "$extra")
  per=$(( ( (with - with1) - (base - base1) ) / n ))
  printf '%-32s %14d %14d %12d\n' "$mode x$n${extra:+ $extra}" "$((base - base1))" "$((with - with1))" "$per"
done
