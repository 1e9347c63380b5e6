// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/config.h"

#include <catch2/catch.hpp>

namespace ferry::controller {
namespace {

absl::Status parseAndValidate(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ferry-controller"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto c = parseFlags(argv);
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
      {{"--log-level", "loud"}, "--log-level must be debug, info, warn or error"},
  };
  for (const auto& row : rows) {
    INFO(row.args[0]);
    auto s = parseAndValidate(row.args);
    REQUIRE_FALSE(s.ok());
    CHECK(std::string(s.message()).find(row.expected) != std::string::npos);
  }
}

// Every flag the chart, the scripts and the docs pass (the names of the hand-written parser this
// replaced), each with a valid value, in both spellings, and --help naming it.
TEST_CASE("every controller flag name is accepted and listed by --help") {
  const std::vector<std::vector<std::string>> flags = {
      {"--manifests", "/m"},
      {"--kubeconfig", "/k"},
      {"--context", "dev"},
      {"--in-cluster"},
      {"--listen", "127.0.0.1:0"},
      {"--trust-domain", "td"},
      {"--root-namespace", "r"},
      {"--page-size", "10"},
      {"--watch-timeout-seconds", "60"},
      {"--reload-debounce-ms", "5"},
      {"--ca-cert", "/c"},
      {"--ca-key", "/k"},
      {"--ca-dir", "/d"},
      {"--cert-lifetime-hours", "1"},
      {"--bootstrap-token-file", "/t"},
      {"--rotation-overlap-hours", "48"},
      {"--trust-bundle-file", "/b"},
      {"--agent-service-account", "sa"},
      {"--token-audience", "aud"},
      {"--namespace", "ns"},
      {"--pod-name", "p"},
      {"--ca-secret", "s"},
      {"--ca-secret-generate"},
      {"--trust-bundle-configmap", "cm"},
      {"--leader-elect"},
      {"--lease-name", "l"},
      {"--lease-duration", "15s"},
      {"--renew-deadline", "10s"},
      {"--retry-period", "2s"},
      {"--metrics-port", "0"},
      {"--resync-seconds", "5"},
      {"--log-level", "warn"},
  };
  const std::string help = usage();
  for (const auto& flag : flags) {
    CAPTURE(flag);
    std::vector<std::string> spaced = {"ferry-controller"};
    spaced.insert(spaced.end(), flag.begin(), flag.end());
    CHECK(parseFlags(spaced).ok());
    if (flag.size() == 2) {
      CHECK(parseFlags({"ferry-controller", flag[0] + "=" + flag[1]}).ok());
    }
    CHECK(help.find("\n  " + flag[0]) != std::string::npos);
  }
}

TEST_CASE("booleans, durations and the log level") {
  auto c = parseFlags(
      {"ferry-controller", "--leader-elect", "--lease-duration=1m", "--log-level=debug"});
  REQUIRE(c.ok());
  CHECK(c->leader_elect);
  CHECK(c->lease_duration == absl::Minutes(1));
  CHECK(c->log_level == "debug");
  auto d = parseFlags({"ferry-controller"});
  REQUIRE(d.ok());
  const ControllerConfig defaults;
  CHECK_FALSE(d->leader_elect);
  CHECK(d->lease_duration == defaults.lease_duration);
  CHECK(d->renew_deadline == defaults.renew_deadline);
  CHECK(d->retry_period == defaults.retry_period);
  CHECK(d->ca_dir == defaults.ca_dir);
  CHECK(d->root_namespace == defaults.root_namespace);
  CHECK(d->resync_seconds == defaults.resync_seconds);
  CHECK(d->rotation_overlap_hours == defaults.rotation_overlap_hours);
  CHECK(d->log_level == "info");
  auto bad = parseFlags({"ferry-controller", "--lease-duration=soon"});
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()) ==
        "--lease-duration: \"soon\" is not a duration (like 15s or 2m)");
}

}  // namespace
}  // namespace ferry::controller
