#!/usr/bin/env bash
# The example suite serial vs `--dagz-workers 2` vs `--dagz-workers 4` (issue 6, bench 3).
#
# Wall time of whole pytest runs, side by side in one run: REPS repetitions (default 3) after one
# uncounted warm-up run of each configuration, the order of the three rotating every repetition.
# Printed: median and min-max per configuration, and the speedups serial/N (ratio of medians,
# and the range of the per-repetition ratios). Target on 2 cores: >= 1.8x with 4 workers.
#
#   bench/suite_speedup.sh                # SUITE=examples/shop REPS=3 PYTEST_ARGS=...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SUITE=${SUITE:-examples/shop}
REPS=${REPS:-3}
PY=${PY:-$ROOT/.venv/bin/python}
PYTEST_ARGS=${PYTEST_ARGS:--q -p no:cacheprovider}

if [[ ! -d $SUITE ]]; then
    echo "suite_speedup: $SUITE is missing (the example suite is not in this checkout yet): nothing measured"
    exit 0
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
configs=(serial 2 4)
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
    [[ $config == serial ]] || args=(--dagz-workers "$config")
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

echo "Example suite $SUITE: serial vs --dagz-workers 2 vs 4; $REPS repetitions (+1 warm-up each), order rotating"
echo "cores: $(nproc); pytest args: $PYTEST_ARGS"
for config in "${configs[@]}"; do
    run_suite "$config" >/dev/null
done
echo "warm-up result line: $(grep -E '[0-9]+ passed' "$OUT/last.log" | tail -n 1)"
echo "  (CPU: pytest and its children; PostgreSQL and MariaDB servers, all their clients)"
for ((rep = 0; rep < REPS; rep++)); do
    for ((i = 0; i < ${#configs[@]}; i++)); do
        config=${configs[$(((i + rep) % ${#configs[@]}))]}
        read -r seconds tests_cpu pg_cpu my_cpu < <(run_suite "$config")
        echo "$rep $config $seconds $tests_cpu $pg_cpu $my_cpu" >>"$OUT/times"
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
for line in open(sys.argv[1]):
    rep, config, seconds, *cpu = line.split()
    times.setdefault(config, {})[int(rep)] = float(seconds)
    busy.setdefault(config, []).append(sum(map(float, cpu)) / float(seconds))
cores = os.cpu_count() or 1
print(f"  {'configuration':<20} {'median':>9}   min - max       cores busy (CPU s / wall s)")
for config, label in (("serial", "serial"), ("2", "--dagz-workers 2"), ("4", "--dagz-workers 4")):
    v = list(times[config].values())
    b = statistics.median(busy[config])
    print(
        f"  {label:<20} {statistics.median(v):8.2f} s   {min(v):.2f} - {max(v):.2f} s"
        f"   {b:.2f} of {cores}"
    )
ceiling = cores / statistics.median(busy["serial"])
print(f"  CPU-bound ceiling of any speedup (cores / cores busy serially): {ceiling:.2f}x")
for config in ("2", "4"):
    serial, par = times["serial"], times[config]
    paired = [serial[r] / par[r] for r in serial]
    ratio = statistics.median(serial.values()) / statistics.median(par.values())
    verdict = ""
    if config == "4":
        verdict = f"   target >= 1.8x: {'met' if ratio >= 1.8 else 'MISSED'}"
    print(
        f"  speedup serial / {config} workers: {ratio:.2f}x"
        f"  (per repetition {min(paired):.2f}-{max(paired):.2f}x){verdict}"
    )
PY
