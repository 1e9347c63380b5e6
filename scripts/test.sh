#!/usr/bin/env bash
# Installs what is missing, builds Ferry and runs the whole test suite through ctest.
#   ./scripts/test.sh             release build in build/, every test (needs root)
#   ./scripts/test.sh --sanitize  AddressSanitizer + UBSan build in build-asan/, every test but the
#                                 end-to-end suites (e2e_*: real agents on the local cluster, the
#                                 longest tests; bench_suite_test, the benchmark suite end to end
#                                 on the same cluster) and the 70,000-handshake first-write case,
#                                 which the release build runs once (its pooled twin, the same
#                                 frame code without a handshake per size, runs in both); the
#                                 end-to-end suites are not even compiled there (FERRY_E2E=OFF)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--sanitized-agent" ]; then
  # The e2e suites of the release build again, with the sanitizer build's agent (both built by
  # the two runs above); .ci/run says which few are left out and why.
  cd build
  FERRY_E2E_AGENT_BIN="$(cd .. && pwd)/build-asan/agent/ferry-agent" ASAN_OPTIONS=detect_leaks=0 \
    exec ctest --output-on-failure --timeout 600 -j 1 -R '^e2e_' \
    -E '^e2e_container_test:|out of descriptors|fd-reserve'
fi

build=build
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_E2E=ON)
select=()
if [ "${1:-}" = "--sanitize" ]; then
  build=build-asan
  flags=(-DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON -DFERRY_E2E=OFF)
  select=(-E '^e2e_|^bench_suite_test:|^hbone_first_write_test:the first writes of a new connection')
fi

./scripts/setup.sh
cmake -S . -B "$build" -G Ninja -DFERRY_WERROR=ON "${flags[@]}"
cmake --build "$build" -j "$(nproc)"
# Leftovers of an earlier killed run would only get in the way; the harness removes them.
if [ -x "$build/test/harness/ferry-cluster" ]; then
  "$build/test/harness/ferry-cluster" cleanup --stale || true
fi
cd "$build"
ctest --output-on-failure --timeout 600 -j 1 "${select[@]}"
