#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# The agent's idle RSS is mostly the shared libraries it maps (bench/README.md). It speaks gRPC
# to the controller itself (userspace/controlplane/grpc_call.h) and loads libcurl only when it
# exports spans (userspace/trace/curl_library.h): neither the gRPC runtime nor libcurl may come
# back as a link-time dependency unnoticed. With static dependencies (FERRY_AGENT_STATIC_DEPS,
# cmake/static_deps_link.sh), OpenSSL, protobuf, nghttp2, yaml-cpp, libbpf, RE2 and Abseil are in
# the binary itself and none of them may be a shared dependency.
# Usage: linked_libraries_test.sh FERRY_AGENT static|shared
set -uo pipefail
agent=${1:?usage: linked_libraries_test.sh FERRY_AGENT static|shared}
mode=${2:?usage: linked_libraries_test.sh FERRY_AGENT static|shared}
out=$(ldd "$agent") || { echo "FAIL: ldd $agent failed"; exit 1; }
# The listing is real: the agent's own libraries are in it.
for needed in libc.so.6 libstdc++.so.6; do
  grep -q "$needed" <<<"$out" || { echo "FAIL: $needed missing from ldd's listing"; exit 1; }
done
if unwanted=$(grep -E 'libgrpc|libgpr|libupb|libcares|libcurl' <<<"$out"); then
  echo "FAIL: the agent links what it should not:"
  echo "$unwanted"
  exit 1
fi
static_libs='libcrypto|libssl|libprotobuf|libnghttp2|libyaml-cpp|libbpf|libre2|libabsl_'
if [ "$mode" = static ]; then
  if shared=$(grep -E "$static_libs" <<<"$out"); then
    echo "FAIL: linked static, yet the agent loads:"
    echo "$shared"
    exit 1
  fi
  # And they are really in the binary (defined, not merely absent).
  symbols=$(nm --defined-only "$agent") || { echo "FAIL: nm $agent failed"; exit 1; }
  for symbol in SSL_CTX_new nghttp2_session_client_new2 bpf_object__open_file; do
    grep -q " T $symbol\$" <<<"$symbols" || { echo "FAIL: $symbol is not defined in $agent"; exit 1; }
  done
else
  for needed in libcrypto.so.3 libnghttp2.so.14; do
    grep -q "$needed" <<<"$out" || { echo "FAIL: $needed missing from ldd's listing"; exit 1; }
  done
fi
echo "ok ($mode): $(wc -l <<<"$out") shared libraries, none of gRPC's or libcurl's"
