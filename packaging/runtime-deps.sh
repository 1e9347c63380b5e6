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
[ $# -gt 0 ] || die "usage: runtime-deps.sh [--dlopen SONAME]... BINARY..."

# --dlopen SONAME: a library a binary loads at run time (dlopen), which ldd cannot see; it and
# what it needs are counted as if linked.
libs=()
files=()
while [ $# -gt 0 ]; do
  if [ "$1" = --dlopen ]; then
    [ $# -ge 2 ] || die "--dlopen needs a soname"
    # awk reads to the end: leaving at the first match could kill ldconfig with SIGPIPE while it
    # still writes, and pipefail would fail the script (1 run in 50 on a busy machine).
    path=$(ldconfig -p | awk -v so="$2" '$1 == so && path == "" { path = $NF } END { print path }')
    [ -n "$path" ] || die "$2 (--dlopen) is not installed"
    libs+=("$path")
    files+=("$path")
    shift 2
  else
    files+=("$1")
    shift
  fi
done
for f in "${files[@]}"; do
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

[ ${#libs[@]} -gt 0 ] || exit 0
# Each library under the merged-/usr spellings dpkg may know it by; one dpkg -S for them all
# (a call per library takes seconds per binary).
declare -A owner=()
candidates=()
for l in $(printf '%s\n' "${libs[@]}" | sort -u); do
  real=$(realpath -- "$l")
  candidates+=("$l" "$real" "${l#/usr}" "/usr$l" "${real#/usr}" "/usr$real")
done
while IFS= read -r line; do
  [[ $line == diversion* ]] && continue
  pkg=${line%%: *} path=${line#*: }
  owner[$path]=${pkg%%:*}
done < <(dpkg -S "${candidates[@]}" 2>/dev/null || true)
for l in $(printf '%s\n' "${libs[@]}" | sort -u); do
  real=$(realpath -- "$l") found=""
  for c in "$l" "$real" "${l#/usr}" "/usr$l" "${real#/usr}" "/usr$real"; do
    if [ -n "${owner[$c]:-}" ]; then
      found=${owner[$c]}
      break
    fi
  done
  [ -n "$found" ] || die "no Debian package owns $l"
  echo "$found"
done | sort -u
