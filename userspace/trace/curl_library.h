// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// libcurl, loaded when the first OTLP exporter is made rather than linked: an agent that
// exports no spans does not map libcurl and the two dozen libraries it brings (GnuTLS,
// Kerberos, LDAP, libssh2, ...: about 3 MiB of idle RSS, bench/README.md). The agent image
// installs libcurl4 all the same (packaging/Dockerfile names it for runtime-deps.sh).

#include <curl/curl.h>

#include "absl/status/statusor.h"

namespace ferry::trace {

// The libcurl entry points the OTLP transport uses.
struct CurlLibrary {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

// The soname the agent loads.
inline constexpr char kCurlSoname[] = "libcurl.so.4";

// Loads libcurl once (thread-safe) and runs curl_global_init; the same answer every call,
// an error naming the library when it cannot be loaded.
absl::StatusOr<const CurlLibrary*> curlLibrary();

}  // namespace ferry::trace
