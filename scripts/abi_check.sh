#!/usr/bin/env bash
# The C ABI checked against its three copies (run by `make lint`; needs target/release/libdagz.so):
#  1. shim/dagz.h compiles as C and C++ with -Wall -Wextra -Werror, and a C program that calls every
#     function through the header links against the built library;
#  2. the dagz_* symbols the library exports (nm -D) are exactly the header's prototypes;
#  3. the header's DAGZ_* constants and shim/dagz/_shim.py's equal the Rust source of truth,
#     src/core/abi.rs.
# Prints one line naming the first mismatch and exits 1; prints "abi: ok (…)" otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
HEADER=${ABI_HEADER:-shim/dagz.h}
LIB=${ABI_LIB:-target/release/libdagz.so}
PY=${ABI_PY:-shim/dagz/_shim.py}
RS=${ABI_RS:-src/core/abi.rs}
fail() { echo "abi: $*" >&2; exit 1; }
[ -f "$LIB" ] || fail "$LIB not built (run make build)"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 1. The header compiles, and every prototype links against the library.
protos=$(grep -oE '\bdagz_[a-z0-9_]+[[:space:]]*\(' "$HEADER" | tr -d '( \t' | sort -u)
{
  echo "#include \"$(realpath "$HEADER")\""
  echo "int main(void) {"
  echo "  const void *volatile p;"
  for f in $protos; do echo "  p = (const void *)&$f; (void)p;"; done
  echo "  return dagz_abi_version() == DAGZ_ABI_VERSION ? 0 : 1;"
  echo "}"
} > "$TMP/abi.c"
gcc -std=c11 -Wall -Wextra -Werror -pedantic -x c -fsyntax-only "$HEADER" 2>"$TMP/err" \
  || fail "$HEADER does not compile as C: $(head -1 "$TMP/err")"
g++ -Wall -Wextra -Werror -x c++ -fsyntax-only "$HEADER" 2>"$TMP/err" \
  || fail "$HEADER does not compile as C++: $(head -1 "$TMP/err")"
gcc -std=c11 -Wall -Wextra -Werror -o "$TMP/abi" "$TMP/abi.c" "$(realpath "$LIB")" 2>"$TMP/err" \
  || fail "a program using every prototype of $HEADER does not build against $LIB: $(grep -m1 -E 'error|undefined' "$TMP/err")"
"$TMP/abi" || fail "dagz_abi_version() of $LIB differs from DAGZ_ABI_VERSION in $HEADER"

# 2. Exported symbols == prototypes.
nm -D --defined-only "$LIB" | awk '$3 ~ /^dagz_/ {print $3}' | sort -u > "$TMP/exported"
printf '%s\n' $protos > "$TMP/declared"
extra=$(comm -23 "$TMP/exported" "$TMP/declared" | tr '\n' ' ')
missing=$(comm -13 "$TMP/exported" "$TMP/declared" | tr '\n' ' ')
[ -z "$extra" ] || fail "$LIB exports ${extra% } but $HEADER declares no such function"
[ -z "$missing" ] || fail "$HEADER declares ${missing% } but $LIB does not export it"

# 3. Constants: NAME=VALUE lines from each copy, compared with the Rust ones.
sed -nE 's/^pub const ([A-Z_]+): i32 = (-?[0-9]+);.*/\1=\2/p' "$RS" | sort > "$TMP/rs"
sed -nE 's/^#define DAGZ_([A-Z_]+)[[:space:]]+\(?(-?[0-9]+)\)?.*/\1=\2/p' "$HEADER" | sort > "$TMP/h"
sed -nE 's/^(ABI_VERSION|ENGINE_[A-Z_]+|CB_[A-Z_]+|STMT_[A-Z_]+)[[:space:]]*=[[:space:]]*(-?[0-9]+)[[:space:]]*(#.*)?$/\1=\2/p' "$PY" \
  | sort > "$TMP/py"
[ -s "$TMP/rs" ] || fail "no constants found in $RS"
for copy in h py; do
  file=$HEADER prefix=DAGZ_
  [ $copy = py ] && file=$PY prefix=
  while IFS== read -r name value; do
    other=$(awk -F= -v n="$name" '$1 == n {print $2}' "$TMP/$copy")
    [ -n "$other" ] || fail "$file has no ${prefix}$name (src/core/abi.rs: $name = $value)"
    [ "$other" = "$value" ] || fail "${prefix}$name is $other in $file but $value in $RS"
  done < "$TMP/rs"
  while IFS== read -r name value; do
    grep -q "^$name=" "$TMP/rs" || fail "${prefix}$name = $value in $file is not in $RS"
  done < "$TMP/$copy"
done
echo "abi: ok ($(wc -l < "$TMP/declared") functions, $(wc -l < "$TMP/rs") constants agree: $HEADER, $LIB, $PY, $RS)"
