#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# Prints, one per line, the Debian packages that provide the shared libraries the given ELF
# binaries load (ldd + dpkg -S). Used by packaging/Dockerfile so runtime images install exactly
# those, and no -dev package. Non-ELF files (scripts) are skipped. Fails on a missing library.
set -euo pipefail

die() {
  echo "runtime-deps: $*" >&2
  exit 1
}
[ $# -gt 0 ] || die "usage: runtime-deps.sh BINARY..."

owner() { # the package owning a library path, trying the merged-/usr spellings
  local p=$1 real candidates c
  real=$(realpath -- "$p")
  candidates=("$p" "$real" "${p#/usr}" "/usr$p" "${real#/usr}" "/usr$real")
  for c in "${candidates[@]}"; do
    if out=$(dpkg -S "$c" 2>/dev/null); then
      echo "${out%%:*}"
      return 0
    fi
  done
  die "no Debian package owns $p"
}

libs=()
for f in "$@"; do
  [ -f "$f" ] || die "$f: no such file"
  [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
  while read -r line; do
    case "$line" in
      *"not found"*) die "$f needs ${line%% *}, which is not installed" ;;
      *"=> /"*) lib=${line#*=> } && libs+=("${lib%% (*}") ;;
      /*) libs+=("${line%% (*}") ;;
    esac
  done < <(ldd "$f" 2>/dev/null || true)
done

for l in "${libs[@]}"; do
  owner "$l"
done | sort -u
