#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# The link launcher of ferry-agent when FERRY_AGENT_STATIC_DEPS is on (agent/CMakeLists.txt):
# runs the link command it is given with OpenSSL, protobuf, nghttp2, yaml-cpp, libbpf (with the
# libelf and zlib it needs), RE2 and Abseil taken from their static archives (Debian's -dev
# packages ship both). Only what the agent references is linked, instead of every page of each
# shared library the agent touches being mapped with the kernel's fault-around: idle RSS
# 19.0 -> 15.5 MiB, and fewer relocations (bench/README.md). Everything else stays shared (libc,
# libstdc++, prometheus-cpp and civetweb, which ship no archive). A library without its archive
# stays shared, and test/agent/linked_libraries_test.sh names it.
set -euo pipefail
args=()
for arg in "$@"; do
  if [[ "$arg" =~ ^(/.*/lib(crypto|ssl|protobuf|nghttp2|yaml-cpp|bpf|re2|absl_[a-z0-9_]+))\.so(\.[0-9.]+)?$ ]] &&
    [ -f "${BASH_REMATCH[1]}.a" ]; then
    args+=("${BASH_REMATCH[1]}.a")
    if [ "${BASH_REMATCH[2]}" = bpf ]; then
      dir=$(dirname "$arg")
      args+=("$dir/libelf.a" "$dir/libz.a")
    fi
  else
    args+=("$arg")
  fi
done
exec "${args[@]}"
