// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/ossl.h"

#include <openssl/err.h>

#include "absl/strings/str_cat.h"

namespace ferry::tls {

std::string drainOpensslErrors() {
  std::string out;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) {
      out += "; ";
    }
    out += buf;
  }
  return out;
}

absl::Status opensslError(absl::string_view what) {
  std::string detail = drainOpensslErrors();
  if (detail.empty()) {
    return absl::InternalError(what);
  }
  return absl::InternalError(absl::StrCat(what, ": ", detail));
}

}  // namespace ferry::tls
