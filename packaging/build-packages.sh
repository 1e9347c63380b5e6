#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# Prints the Debian packages Ferry needs to build (scripts/setup.sh's packages from the start of
# its list to the "# local cluster" group: toolchain, BPF, libraries), one per line. The
# Dockerfile's build stage installs exactly these, so the two never drift apart.
set -euo pipefail
setup=${1:-scripts/setup.sh}
[ -f "$setup" ] || { echo "build-packages: $setup not found" >&2; exit 1; }
grep -q '^packages=(' "$setup" && grep -q '# local cluster' "$setup" || {
  echo "build-packages: $setup has no packages=( ... # local cluster section" >&2
  exit 1
}
sed -n '/^packages=(/,/# local cluster/p' "$setup" | sed -e 's/#.*//' -e 's/^packages=(//' |
  tr -s ' \t' '\n' | sed '/^$/d'
