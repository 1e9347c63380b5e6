#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# Tests the scripts that pick the images' Debian packages. runtime-deps.sh: libraries of a real
# binary map to their installed, non -dev packages; scripts add nothing; a missing file or
# library fails. build-packages.sh: setup.sh's build groups, nothing from its test groups.
# Usage: packaging_scripts_test.sh PACKAGING_DIR SETUP_SH
set -uo pipefail

packaging=${1:?usage: packaging_scripts_test.sh PACKAGING_DIR SETUP_SH}
setup=${2:?usage: packaging_scripts_test.sh PACKAGING_DIR SETUP_SH}
script=$packaging/runtime-deps.sh
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

# --dlopen: a library loaded at run time counts with what it needs (the agent's libcurl).
bash "$script" --dlopen libcurl.so.4 "$(command -v jq)" >"$work/dlopen.txt" 2>"$work/err"
check "--dlopen libcurl.so.4 resolves" test $? -eq 0
check "... to libcurl4 beside jq's packages" bash -c "grep -qx libcurl4 '$work/dlopen.txt' && grep -qx libjq1 '$work/dlopen.txt'"
check "... with libcurl's own dependencies (libnghttp2-14)" grep -qx libnghttp2-14 "$work/dlopen.txt"
check "--dlopen of a library that is not installed fails" bash -c "! bash '$script' --dlopen libferry-none.so.9 '$(command -v jq)' 2>/dev/null"

# An executable whose shared library has gone away.
printf 'int ferry_lib(void) { return 1; }\n' >"$work/lib.c"
printf 'int ferry_lib(void);\nint main(void) { return ferry_lib(); }\n' >"$work/main.c"
cc -shared -fPIC -o "$work/libferrygone.so" "$work/lib.c" &&
  cc -o "$work/app" "$work/main.c" -L"$work" -lferrygone
rm -f "$work/libferrygone.so"
check "a missing library fails" bash -c "! bash '$script' '$work/app' 2>'$work/err'"
check "... naming the library" grep -q "libferrygone.so" "$work/err"

# build-packages.sh
bash "$packaging/build-packages.sh" "$setup" >"$work/build.txt" 2>"$work/err"
check "build-packages reads setup.sh" test $? -eq 0
for p in build-essential cmake clang libbpf-dev bpftool libssl-dev libabsl-dev libgrpc++-dev; do
  check "... build needs $p" grep -qx -- "$p" "$work/build.txt"
done
for p in tshark iperf3 prometheus wrk nodejs golang-go; do
  check "... but not the test/bench package $p" bash -c "! grep -qx -- '$p' '$work/build.txt'"
done
check "... and no comment words" bash -c "! grep -q '[#:()]' '$work/build.txt'"
installed() {
  local p
  while read -r p; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
      echo "not installed: $p"
      return 1
    }
  done <"$work/build.txt"
}
check "... every one an installed Debian package (setup.sh ran)" installed
printf 'packages=(\n  cmake\n)\n' >"$work/setup-bad.sh"
check "a setup.sh without the groups is refused" \
  bash -c "! bash '$packaging/build-packages.sh' '$work/setup-bad.sh' 2>/dev/null"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
