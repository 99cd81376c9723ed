#!/usr/bin/env bash
# Size limits of the Rust sources (run by `make lint`): no file over 600 lines outside tests (a
# module's tests live in its own tests.rs), no function over 80 lines anywhere (rustfmt'd code: a
# function ends at the first `}` at its own indentation). One line per violation; exit 1 if any.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_FILE=${MAX_FILE:-600}
MAX_FN=${MAX_FN:-80}
bad=0
while IFS= read -r f; do
  case "$f" in */tests.rs | tests/*) ;; *)
    n=$(wc -l < "$f")
    if [ "$n" -gt "$MAX_FILE" ]; then
      echo "size: $f has $n lines (limit $MAX_FILE outside tests: split it by concern)"; bad=1
    fi ;;
  esac
  out=$(awk -v max="$MAX_FN" -v file="$f" '
    match($0, /^ *((pub(\([a-z:]+\))? )?(const )?(async )?(unsafe )?(extern "C" )?fn [A-Za-z0-9_]+)/) {
      if (name != "") next
      ind = $0; sub(/[^ ].*/, "", ind)
      name = $0; sub(/.*fn /, "", name); sub(/[^A-Za-z0-9_].*/, "", name)
      start = NR; next
    }
    name != "" && $0 ~ ("^" ind "}") { len = NR - start + 1
      if (len > max) printf "size: %s:%d: fn %s has %d lines (limit %d)\n", file, start, name, len, max
      name = "" }
    name != "" && NR == start && $0 ~ /}$/ { name = "" }
    name != "" && $0 ~ /;$/ && NR == start { name = "" }
  ' "$f")
  if [ -n "$out" ]; then echo "$out"; bad=1; fi
done < <(find src tests fuzz/fuzz_targets bench -name '*.rs' 2>/dev/null | sort)
exit $bad
