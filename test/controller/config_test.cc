// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/config.h"

#include <catch2/catch.hpp>

namespace ferry::controller {
namespace {

absl::Status parseAndValidate(std::vector<std::string> args) {
  args.insert(args.begin(), "ferry-controller");
  auto c = parseFlags(args);
  return c.ok() ? c->validate() : c.status();
}

TEST_CASE("defaults are valid and mean in-cluster") {
  auto c = parseFlags({"ferry-controller"});
  REQUIRE(c.ok());
  CHECK(c->validate().ok());
  CHECK(c->mode() == ControllerConfig::Mode::kInCluster);
  CHECK(c->listen == kDefaultListen);
  CHECK(c->cert_lifetime_hours == 24);
}

TEST_CASE("flags fill the config in both spellings") {
  auto c = parseFlags({"ferry-controller", "--manifests", "/etc/ferry", "--listen=127.0.0.1:0",
                       "--trust-domain", "example.org", "--page-size=50", "--bootstrap-token-file",
                       "/etc/ferry-token", "--trust-bundle-file=/b.pem"});
  REQUIRE(c.ok());
  CHECK(c->validate().ok());
  CHECK(c->mode() == ControllerConfig::Mode::kStandalone);
  CHECK(c->manifests_dir == "/etc/ferry");
  CHECK(c->listen == "127.0.0.1:0");
  CHECK(c->trust_domain == "example.org");
  CHECK(c->page_size == 50);
  CHECK(c->bootstrap_token_file == "/etc/ferry-token");
  CHECK(c->trust_bundle_file == "/b.pem");
  auto k = parseFlags({"ferry-controller", "--kubeconfig", "/k", "--context", "dev"});
  REQUIRE(k.ok());
  CHECK(k->mode() == ControllerConfig::Mode::kKubeconfig);
}

TEST_CASE("bad flags and values are refused with a reason") {
  struct Row {
    std::vector<std::string> args;
    const char* expected;
  };
  const std::vector<Row> rows = {
      {{"--bogus"}, "unknown flag --bogus"},
      {{"--listen"}, "needs a value"},
      {{"--page-size", "many"}, "not a number"},
      {{"--page-size", "0"}, "--page-size"},
      {{"--manifests", "/a", "--kubeconfig", "/b"}, "choose one source"},
      {{"--manifests", "/a", "--in-cluster"}, "choose one source"},
      {{"--context", "dev"}, "--context needs --kubeconfig"},
      {{"--listen", "15012"}, "not host:port"},
      {{"--listen", "[::]:99999"}, "not host:port"},
      {{"--trust-domain", "a/b"}, "trust domain"},
      {{"--ca-cert", "/c.pem"}, "go together"},
      {{"--cert-lifetime-hours", "0"}, "1..2160"},
      {{"--watch-timeout-seconds", "1"}, "at least 10"},
      {{"--manifests", "/a"}, "needs --bootstrap-token-file"},
      {{"--rotation-overlap-hours", "2"}, "at least --cert-lifetime-hours"},
      {{"--rotation-overlap-hours", "soon"}, "not a number"},
      {{"stray"}, "unexpected argument"},
  };
  for (const auto& row : rows) {
    INFO(row.args[0]);
    auto s = parseAndValidate(row.args);
    REQUIRE_FALSE(s.ok());
    CHECK(std::string(s.message()).find(row.expected) != std::string::npos);
  }
}

}  // namespace
}  // namespace ferry::controller
