#!/usr/bin/env bash
# The example suite: parallel speedup and cleanup saving, side by side in one run (issue 6,
# bench 3; issue 17).
#
# Configurations (CONFIGS, default "serial dagz 1 4"; add 2 for --dagz-workers 2):
#   serial  plain `pytest`, no dagz: the example's `clean_databases` empties the base databases
#           before every test (a DELETE per table + sequence resets, a TRUNCATE per MariaDB table);
#   dagz    `pytest --dagz`, serial (no xdist): dagz's `prepare` (truncate of the tables holding
#           rows) only before tests that connect;
#   N       `pytest --dagz-workers N`: N xdist workers, each doing dagz's per-test work.
# Figures: the parallel speedup `--dagz-workers 1` / `--dagz-workers 4` (same per-test work on
# both sides; target >= 1.8x on 2 cores); the cleanup saving serial / dagz (both serial, only the
# cleanup differs); the cost of xdist with one worker (dagz / 1); and what a user sees going from
# plain pytest to 4 workers (serial / 4: both effects together, no target).
#
# Method: one uncounted warm-up run of each configuration, then REPS repetitions (default 3) in
# which the configurations run in an order that rotates every repetition; median and min-max per
# configuration; ratios of medians with the range of the per-repetition ratios. Every run's wall
# time, CPU and pytest result line is printed (the raw output). The example's databases are
# dz_bench_<random>_shop / _audit (SHOP_PG_DATABASE / SHOP_MYSQL_DATABASE) and dagz's copies of
# them, dropped at the end, also on failure.
#
#   bench/suite_speedup.sh [--quick]     # SUITE=examples/shop REPS=3 CONFIGS=... PYTEST_ARGS=...
#                                        # --quick: REPS=1, no warm-up
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SUITE=${SUITE:-examples/shop}
REPS=${REPS:-3}
WARMUP=1
[[ ${1:-} == --quick ]] && { REPS=1; WARMUP=0; }
PY=${PY:-$ROOT/.venv/bin/python}
PYTEST_ARGS=${PYTEST_ARGS:--q -p no:cacheprovider}
read -r -a configs <<<"${CONFIGS:-serial dagz 1 4}"

if [[ ! -d $SUITE ]]; then
    echo "suite_speedup: $SUITE is missing (the example suite is not in this checkout yet): nothing measured"
    exit 0
fi

OUT=$(mktemp -d)
RUN=$("$PY" bench/_names.py new)
export SHOP_PG_DATABASE=${RUN}_shop SHOP_MYSQL_DATABASE=${RUN}_audit
trap '"$PY" bench/_names.py drop "$RUN"; rm -rf "$OUT"' EXIT
TICK=$(getconf CLK_TCK)
PG_PID=$(head -n 1 "$(psql -h 127.0.0.1 -U postgres -Atc 'show data_directory')/postmaster.pid" 2>/dev/null || true)
MY_PID=$(pidof -s mariadbd mysqld 2>/dev/null || true)

server_ticks() { # CPU ticks used so far: postmaster + its exited backends, mariadbd
    local pg=0 my=0
    [[ -n $PG_PID && -r /proc/$PG_PID/stat ]] && pg=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$PG_PID/stat")
    [[ -n $MY_PID && -r /proc/$MY_PID/stat ]] && my=$(awk '{print $14 + $15}' "/proc/$MY_PID/stat")
    echo "$pg $my"
}

run_suite() { # run_suite CONFIG -> "wall_s tests_cpu_s pg_cpu_s my_cpu_s"; log in $OUT/last.log
    local config=$1 args=()
    case $config in
        serial) ;;
        dagz) args=(--dagz) ;;
        *) args=(--dagz-workers "$config") ;;
    esac
    local t0 t1 s0 s1
    s0=$(server_ticks)
    t0=$(date +%s.%N)
    # `times` in the subshell: CPU of pytest and every process it waited for (xdist workers,
    # psql and Python subprocesses), user + system.
    # shellcheck disable=SC2086
    if ! (cd "$SUITE" && "$PY" -m pytest $PYTEST_ARGS "${args[@]}" >"$OUT/last.log" 2>&1
          rc=$?; times >"$OUT/cpu"; exit $rc); then
        echo "suite_speedup: the suite failed ($config):" >&2
        tail -n 40 "$OUT/last.log" >&2
        return 1
    fi
    t1=$(date +%s.%N)
    s1=$(server_ticks)
    local tests_cpu
    tests_cpu=$(tail -n 1 "$OUT/cpu" | awk '{
        n = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); n += a[1] * 60 + a[2] }
        print n }')
    echo "$t0 $t1 $tests_cpu $s0 $s1" | awk -v tick="$TICK" \
        '{printf "%.3f %.2f %.2f %.2f\n", $2 - $1, $3, ($6 - $4) / tick, ($7 - $5) / tick}'
}

echo "Example suite $SUITE: configurations ${configs[*]} (serial = plain pytest, dagz = pytest --dagz," \
     "N = --dagz-workers N). Method: $WARMUP uncounted warm-up run(s) of each, then $REPS repetitions," \
     "order rotating every repetition; median and min-max; ratios of medians with the range of the" \
     "per-repetition ratios; every run printed"
echo "cores: $(nproc); pytest args: $PYTEST_ARGS; databases: ${RUN}_shop, ${RUN}_audit (+ dagz's copies)"
if ((WARMUP)); then
    for config in "${configs[@]}"; do
        run_suite "$config" >/dev/null
        echo "  warm-up  $config: $(grep -E '[0-9]+ passed' "$OUT/last.log" | tail -n 1 | tr -d '=')"
    done
fi
echo "  (CPU: pytest and its children; PostgreSQL and MariaDB servers, all their clients)"
for ((rep = 0; rep < REPS; rep++)); do
    for ((i = 0; i < ${#configs[@]}; i++)); do
        config=${configs[$(((i + rep) % ${#configs[@]}))]}
        read -r seconds tests_cpu pg_cpu my_cpu < <(run_suite "$config")
        passed=$(grep -oE '[0-9]+ passed' "$OUT/last.log" | tail -n 1 | cut -d' ' -f1)
        echo "$rep $config $seconds ${passed:-0} $tests_cpu $pg_cpu $my_cpu" >>"$OUT/times"
        printf '  repetition %d  %-7s %7.2f s   CPU %6.1f + %5.1f + %5.1f s   %s\n' \
            "$((rep + 1))" "$config" "$seconds" "$tests_cpu" "$pg_cpu" "$my_cpu" \
            "$(grep -E '[0-9]+ passed' "$OUT/last.log" | tail -n 1 | tr -d '=')"
    done
done

"$PY" - "$OUT/times" <<'PY'
import os
import statistics
import sys

times: dict[str, dict[int, float]] = {}
busy: dict[str, list[float]] = {}
passed: set[str] = set()
for line in open(sys.argv[1]):
    rep, config, seconds, count, *cpu = line.split()
    times.setdefault(config, {})[int(rep)] = float(seconds)
    busy.setdefault(config, []).append(sum(map(float, cpu)) / float(seconds))
    passed.add(count)
if len(passed) > 1:
    print(f"  WARNING: the runs passed different numbers of tests ({', '.join(sorted(passed))}):")
    print("  the configurations did not do the same work; the ratios below are not comparable")
cores = os.cpu_count() or 1
labels = {"serial": "serial (plain pytest)", "dagz": "serial, pytest --dagz"}
print(f"  {'configuration':<24} {'median':>9}   min - max       cores busy (CPU s / wall s)")
for config in times:
    v = list(times[config].values())
    b = statistics.median(busy[config])
    label = labels.get(config, f"--dagz-workers {config}")
    print(
        f"  {label:<24} {statistics.median(v):8.2f} s   {min(v):.2f} - {max(v):.2f} s"
        f"   {b:.2f} of {cores}"
    )


def ratio(slow: str, fast: str, what: str, target: float | None = None) -> None:
    if slow not in times or fast not in times:
        return
    a, b = times[slow], times[fast]
    paired = [a[r] / b[r] for r in a]
    med = statistics.median(a.values()) / statistics.median(b.values())
    verdict = f"   target >= {target:g}x: {'met' if med >= target else 'MISSED'}" if target else ""
    print(
        f"  {what}: {med:.2f}x  (per repetition {min(paired):.2f}-{max(paired):.2f}x){verdict}"
    )


if "1" in times:
    ceiling = cores / statistics.median(busy["1"])
    print(f"  CPU-bound ceiling of any speedup (cores / cores busy with 1 worker): {ceiling:.2f}x")
for n in sorted((c for c in times if c.isdigit() and c != "1"), key=int):
    ratio("1", n, f"parallel speedup, --dagz-workers 1 / {n}", 1.8 if n == "4" else None)
ratio("serial", "dagz", "cleanup saving, serial plain / serial --dagz (dagz's prepare)")
ratio("dagz", "1", "xdist with one worker, serial --dagz / --dagz-workers 1")
ratio("serial", "4", "plain pytest / --dagz-workers 4 (both effects together)")
PY
