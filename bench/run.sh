#!/bin/bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
# The benchmark suite, one command (root: it builds a local cluster). See bench/README.md.
#
#   sudo bench/run.sh --quick            # about 2 minutes; results in build/bench-results/
#   sudo bench/run.sh --full             # about 12 minutes; results in bench/results/<date>/
#   sudo bench/run.sh --quick --profile  # also perf profiles and flame graphs (bench/flame)
#   options: --build DIR (default ./build)  --out DIR  --no-build  --tiny (seconds; for tests)
#   anything else goes to ferry-bench-suite (e.g. --rounds=5 --cases=no_mesh,ferry_l4)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=quick
build="$root/build"
out=""
do_build=1
profile=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --tiny) mode=tiny ;;
    --build) build="$2"; shift ;;
    --out) out="$2"; shift ;;
    --no-build) do_build=0 ;;
    --profile) profile=1; extra+=("--profile=1") ;;
    *) extra+=("$1") ;;
  esac
  shift
done
if [[ $EUID -ne 0 ]]; then
  echo "bench/run.sh: needs root (network namespaces, cgroups, eBPF)" >&2
  exit 2
fi
if [[ -z "$out" ]]; then
  if [[ $mode == full ]]; then
    out="$root/bench/results/$(date -u +%Y-%m-%d)"
  else
    out="$build/bench-results/$mode-$(date -u +%Y%m%d-%H%M%S)"
  fi
fi
if [[ $do_build == 1 ]]; then
  cmake --build "$build" --target ferry-bench-suite ferry-loadgen ferry-agent -j2
fi
mkdir -p "$out"
status=0
"$build/bench/suite/ferry-bench-suite" --mode="$mode" --out="$out" "${extra[@]}" || status=$?
# What the cipher alone costs on this machine, after the runs (report.py: the most a user-space
# TLS relay pair can move here): OpenSSL's AES-128-GCM, the suite's cipher, on 16 KiB records.
for dir in encrypt decrypt; do
  flag=(); [[ $dir == decrypt ]] && flag=(-decrypt)
  /usr/bin/openssl speed -seconds 1 -bytes 16384 "${flag[@]}" -evp aes-128-gcm 2>/dev/null |
    awk -v d="$dir" '/^AES-128-GCM/ { sub(/k$/, "", $2); printf "%s %.0f\n", d, $2 * 1000 }'
done > "$out/cipher.txt" || status=$?
/usr/bin/python3 "$root/bench/suite/report.py" "$out"
cat "$out/table.md"
if [[ $profile == 1 ]]; then
  bash "$root/bench/flame/flame.sh" "$out/profiles" "$build/bench-flame" || status=$?
fi
echo "bench/run.sh: results in $out"
exit $status
