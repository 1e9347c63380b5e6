#!/bin/bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
# Turns each perf profile of the bench suite (<out>/profiles/*.data, `bench/run.sh --profile`)
# into a flame graph SVG beside it, with the npm package `flamegraph` pinned in package-lock.json.
#
#   bench/flame/flame.sh PROFILE_DIR [WORK_DIR]   # WORK_DIR holds node_modules (default: a temp dir)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
profiles=${1:?usage: flame.sh PROFILE_DIR [WORK_DIR]}
work=${2:-$(mktemp -d)}
mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --no-audit --no-fund --silent)
shopt -s nullglob
count=0
for data in "$profiles"/*.data; do
  svg="${data%.data}.svg"
  title=$(basename "${data%.data}")
  # --no-inline: resolving inlined frames through addr2line takes minutes per profile.
  perf script --no-inline -i "$data" 2>/dev/null |
    "$work/node_modules/.bin/flamegraph" -t perf --titletext "$title" >"$svg"
  echo "flame.sh: $svg"
  count=$((count + 1))
done
if [[ $count == 0 ]]; then
  echo "flame.sh: no *.data in $profiles" >&2
  exit 1
fi
