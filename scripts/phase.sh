#!/usr/bin/env bash
# phase.sh NAME CMD...: one line when the phase starts, one with its elapsed time when it ends
# (or fails), so no step of `make` is silent for minutes.
set -uo pipefail
name=$1
shift
printf '=== %s ...\n' "$name"
t0=$(date +%s.%N)
"$@"
rc=$?
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if ((rc == 0)); then
    printf '=== %s: done in %ss\n' "$name" "$secs"
else
    printf '=== %s: FAILED (exit %d) after %ss\n' "$name" "$rc" "$secs" >&2
fi
exit "$rc"
