#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# The agent's idle RSS is mostly the shared libraries it maps (bench/README.md). It speaks gRPC
# to the controller itself (userspace/controlplane/grpc_call.h) and loads libcurl only when it
# exports spans (userspace/trace/curl_library.h): neither the gRPC runtime nor libcurl may come
# back as a link-time dependency unnoticed. With static dependencies (FERRY_AGENT_STATIC_DEPS,
# cmake/static_deps_link.sh), OpenSSL, protobuf, nghttp2, yaml-cpp, libbpf, RE2 and Abseil are in
# the binary itself and none of them may be a shared dependency. Its protobuf messages are
# lite (no descriptors, no reflection: about 1 MiB of code), and with `relr` (agent/CMakeLists.txt,
# FERRY_HAVE_RELR) its relative relocations are packed and the code it runs at start-up and idle
# comes first, in `.text.warm` (agent/warm_text.ld): at least half of what the script placed
# when it was made must still be found there, or the script is stale (bench/text-order/run.sh
# remakes it).
# Usage: linked_libraries_test.sh FERRY_AGENT static|shared relr|rela [WARM_TEXT_LD]
set -uo pipefail
usage='usage: linked_libraries_test.sh FERRY_AGENT static|shared relr|rela'
agent=${1:?$usage}
mode=${2:?$usage}
relocs=${3:?$usage}
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
demangled=$(nm -C --defined-only "$agent") || { echo "FAIL: nm $agent failed"; exit 1; }
# The messages are there (the lite runtime's base class), their reflection is not.
grep -q ' google::protobuf::MessageLite::' <<<"$demangled" ||
  { echo "FAIL: no protobuf message code in $agent"; exit 1; }
if reflection=$(grep -m3 -E ' google::protobuf::(DescriptorPool|Reflection)::' <<<"$demangled"); then
  echo "FAIL: the agent carries protobuf reflection (a .proto without LITE_RUNTIME?):"
  echo "$reflection"
  exit 1
fi
dynamic=$(readelf -d "$agent") || { echo "FAIL: readelf -d $agent failed"; exit 1; }
if [ "$relocs" = relr ] && ! grep -q '(RELR)' <<<"$dynamic"; then
  echo "FAIL: built with packed relocations (FERRY_HAVE_RELR), yet $agent has no DT_RELR"
  exit 1
fi
warm_note=''
if [ "$relocs" = relr ]; then
  script=${4:?$usage}
  placed=$(grep -o 'warm_bytes=[0-9]*' "$script" | cut -d= -f2)
  [ -n "$placed" ] || { echo "FAIL: $script names no warm_bytes"; exit 1; }
  # readelf -SW: [Nr] Name Type Address Off Size ...
  size=$(readelf -SW "$agent" | awk '{ for (i = 1; i <= NF; i++) if ($i == ".text.warm") print $(i + 4) }')
  [ -n "$size" ] || { echo "FAIL: $agent has no .text.warm section (is $script linked?)"; exit 1; }
  warm=$((16#$size))
  if [ $((warm * 2)) -lt "$placed" ]; then
    echo "FAIL: .text.warm holds $warm bytes of the $placed $script placed: stale, run bench/text-order/run.sh"
    exit 1
  fi
  warm_note="; $warm bytes of code in .text.warm ($placed when the script was made)"
fi
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
echo "ok ($mode, $relocs): $(wc -l <<<"$out") shared libraries, none of gRPC's or libcurl's; protobuf lite$warm_note"
