#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# Tests packaging/runtime-deps.sh, which picks the Debian packages of the runtime images:
# libraries of a real binary map to their installed, non -dev packages; scripts add nothing;
# a missing file or library fails. Usage: runtime_deps_test.sh SCRIPT
set -uo pipefail

script=${1:?usage: runtime_deps_test.sh path/to/runtime-deps.sh}
passed=0
failed=0
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok    $name"
  else
    failed=$((failed + 1))
    echo "FAIL  $name"
  fi
}
for tool in cc ldd dpkg jq; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (scripts/setup.sh installs it)"; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bash "$script" "$(command -v jq)" >"$work/jq.txt" 2>"$work/err"
check "jq's libraries resolve" test $? -eq 0
check "... to libjq1 and libc6" bash -c "grep -qx libjq1 '$work/jq.txt' && grep -qx libc6 '$work/jq.txt'"
check "... and to no -dev package" bash -c "! grep -q -- '-dev$' '$work/jq.txt'"
all_installed() {
  local p
  while read -r p; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
  done <"$work/jq.txt"
}
check "... every one of them an installed package" all_installed
check "a script adds no package" test -z "$(bash "$script" "$(dirname "$script")/ferry-cni-install")"
check "a missing file fails" bash -c "! bash '$script' '$work/nope' 2>/dev/null"

# An executable whose shared library has gone away.
printf 'int ferry_lib(void) { return 1; }\n' >"$work/lib.c"
printf 'int ferry_lib(void);\nint main(void) { return ferry_lib(); }\n' >"$work/main.c"
cc -shared -fPIC -o "$work/libferrygone.so" "$work/lib.c" &&
  cc -o "$work/app" "$work/main.c" -L"$work" -lferrygone
rm -f "$work/libferrygone.so"
check "a missing library fails" bash -c "! bash '$script' '$work/app' 2>'$work/err'"
check "... naming the library" grep -q "libferrygone.so" "$work/err"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
