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

run_suite() { # run_suite CONFIG -> prints seconds; the log goes to $OUT/last.log
    local config=$1 args=()
    [[ $config == serial ]] || args=(--dagz-workers "$config")
    local t0 t1
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    if ! (cd "$SUITE" && "$PY" -m pytest $PYTEST_ARGS "${args[@]}") >"$OUT/last.log" 2>&1; then
        echo "suite_speedup: the suite failed ($config):" >&2
        tail -n 40 "$OUT/last.log" >&2
        return 1
    fi
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.3f\n", $2 - $1}'
}

echo "Example suite $SUITE: serial vs --dagz-workers 2 vs 4; $REPS repetitions (+1 warm-up each), order rotating"
echo "cores: $(nproc); pytest args: $PYTEST_ARGS"
for config in "${configs[@]}"; do
    run_suite "$config" >/dev/null
done
echo "warm-up result line: $(grep -E '[0-9]+ passed' "$OUT/last.log" | tail -n 1)"
for ((rep = 0; rep < REPS; rep++)); do
    for ((i = 0; i < ${#configs[@]}; i++)); do
        config=${configs[$(((i + rep) % ${#configs[@]}))]}
        seconds=$(run_suite "$config")
        echo "$rep $config $seconds" >>"$OUT/times"
        printf '  repetition %d  %-7s %8.2f s   %s\n' "$((rep + 1))" "$config" "$seconds" \
            "$(grep -E '[0-9]+ passed' "$OUT/last.log" | tail -n 1 | tr -d '=')"
    done
done

"$PY" - "$OUT/times" <<'PY'
import statistics
import sys

times: dict[str, dict[int, float]] = {}
for line in open(sys.argv[1]):
    rep, config, seconds = line.split()
    times.setdefault(config, {})[int(rep)] = float(seconds)
print(f"  {'configuration':<20} {'median':>9}   min - max")
for config, label in (("serial", "serial"), ("2", "--dagz-workers 2"), ("4", "--dagz-workers 4")):
    v = list(times[config].values())
    print(f"  {label:<20} {statistics.median(v):8.2f} s   {min(v):.2f} - {max(v):.2f} s")
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
