#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# The agent's idle RSS is mostly the shared libraries it maps (bench/README.md). It speaks gRPC
# to the controller itself (userspace/controlplane/grpc_call.h) and loads libcurl only when it
# exports spans (userspace/trace/curl_library.h): neither the gRPC runtime nor libcurl may come
# back as a link-time dependency unnoticed.
# Usage: linked_libraries_test.sh FERRY_AGENT
set -uo pipefail
agent=${1:?usage: linked_libraries_test.sh FERRY_AGENT}
out=$(ldd "$agent") || { echo "FAIL: ldd $agent failed"; exit 1; }
# The listing is real: the agent's own libraries are in it.
for needed in libc.so.6 libcrypto.so.3 libnghttp2.so.14; do
  grep -q "$needed" <<<"$out" || { echo "FAIL: $needed missing from ldd's listing"; exit 1; }
done
if unwanted=$(grep -E 'libgrpc|libgpr|libupb|libcares|libcurl' <<<"$out"); then
  echo "FAIL: the agent links what it should not:"
  echo "$unwanted"
  exit 1
fi
echo "ok: $(wc -l <<<"$out") libraries, none of gRPC's or libcurl's"
