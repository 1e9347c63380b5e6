// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "e2e/http_apps.h"

#include <catch2/catch.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "status_testing.h"

namespace ferry::e2e {

nlohmann::json httpLoad(Mesh& m, const std::string& vip, int count, int connections,
                        const std::string& method) {
  auto out = m.run(m.pod(1, 1),
                   {"/usr/bin/python3", meshAppsScript(), "http-load", "--host=" + vip, "--port=80",
                    absl::StrCat("--count=", count), absl::StrCat("--connections=", connections),
                    "--method=" + method},
                   absl::Seconds(300));
  REQUIRE_OK(out);
  return nlohmann::json::parse(*out);
}

int64_t statusCount(const nlohmann::json& r, const std::string& status) {
  return r["status"].contains(status) ? r["status"][status].get<int64_t>() : 0;
}

nlohmann::json backendStats(Mesh& m, int node, int pod, uint16_t port) {
  auto out =
      m.run(m.pod(node, pod), {"/usr/bin/python3", meshAppsScript(), "http-get", "--host=127.0.0.1",
                               absl::StrCat("--port=", port), "--text=/__stats"});
  REQUIRE_OK(out);
  std::vector<std::string> f = absl::StrSplit(*out, absl::MaxSplits(' ', 2));
  REQUIRE(f.size() == 3);
  return nlohmann::json::parse(f[2]);
}

}  // namespace ferry::e2e
