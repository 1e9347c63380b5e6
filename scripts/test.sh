#!/usr/bin/env bash
# Installs what is missing, builds Ferry and runs the whole test suite through ctest.
#   ./scripts/test.sh             release build in build/, every test (needs root)
#   ./scripts/test.sh --sanitize  AddressSanitizer + UBSan build in build-asan/, every test
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  build=build-asan
  flags=(-DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON)
fi

./scripts/setup.sh
cmake -S . -B "$build" -G Ninja -DFERRY_WERROR=ON "${flags[@]}"
cmake --build "$build" -j "$(nproc)"
# Leftovers of an earlier killed run would only get in the way; the harness removes them.
if [ -x "$build/test/harness/ferry-cluster" ]; then
  "$build/test/harness/ferry-cluster" cleanup --stale || true
fi
cd "$build"
ctest --output-on-failure --timeout 600 -j 1
