// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "trace/curl_library.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"

namespace ferry::trace {
namespace {

template <typename F>
bool bind(void* handle, const char* name, F* out) {
  *out = reinterpret_cast<F>(::dlsym(handle, name));
  return *out != nullptr;
}

absl::StatusOr<CurlLibrary> load() {
  void* handle = ::dlopen(kCurlSoname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat("OTLP export needs ", kCurlSoname,
                     " (Debian package libcurl4): ", why ? why : "not found"));
  }
  CurlLibrary c{};
  const bool ok = bind(handle, "curl_global_init", &c.global_init) &&
                  bind(handle, "curl_easy_init", &c.easy_init) &&
                  bind(handle, "curl_easy_cleanup", &c.easy_cleanup) &&
                  bind(handle, "curl_easy_setopt", &c.easy_setopt) &&
                  bind(handle, "curl_easy_perform", &c.easy_perform) &&
                  bind(handle, "curl_easy_getinfo", &c.easy_getinfo) &&
                  bind(handle, "curl_easy_strerror", &c.easy_strerror) &&
                  bind(handle, "curl_slist_append", &c.slist_append) &&
                  bind(handle, "curl_slist_free_all", &c.slist_free_all);
  if (!ok) {
    // The library stays loaded: it is a process-wide singleton either way.
    return absl::FailedPreconditionError(
        absl::StrCat(kCurlSoname, " lacks an entry point the OTLP exporter uses"));
  }
  if (c.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    return absl::InternalError("curl_global_init failed");
  }
  return c;
}

}  // namespace

absl::StatusOr<const CurlLibrary*> curlLibrary() {
  static const absl::StatusOr<CurlLibrary>* const loaded = new absl::StatusOr<CurlLibrary>(load());
  if (!loaded->ok()) {
    return loaded->status();
  }
  return &**loaded;
}

}  // namespace ferry::trace
