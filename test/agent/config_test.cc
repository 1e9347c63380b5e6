// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/config.h"

#include <catch2/catch.hpp>

namespace ferry::agent {
namespace {

TEST_CASE("flags parse into the config with defaults", "[agent]") {
  auto c = parseFlags(
      {"--node=node1", "--certs=/tmp/c", "--capture=none", "--workers=3", "--admin-port=0"});
  REQUIRE(c.ok());
  CHECK(c->node_name == "node1");
  CHECK(c->workers == 3);
  CHECK(c->workerCount() == 3);
  CHECK(c->admin_port == 0);
  CHECK(c->stateFile() == "/run/ferry/node1/pods.json");
  CHECK(c->enroll_socket == "/run/ferry/agent.sock");
  CHECK(c->max_buffer_bytes == kDefaultMaxBufferBytes);
  CHECK(c->cluster_name == "Kubernetes");
  CHECK(c->drain_grace_ms == kDefaultDrainGraceMs);
  CHECK(c->handoverSocket() == "/run/ferry/agent.sock.handover");
  auto drain = parseFlags({"--node=n", "--certs=/c", "--capture=none", "--drain-grace=25s",
                           "--handover-socket=/run/h.sock"});
  REQUIRE(drain.ok());
  CHECK(drain->drain_grace_ms == 25000);
  CHECK(drain->handoverSocket() == "/run/h.sock");
  auto named = parseFlags({"--node=n", "--certs=/c", "--capture=none", "--cluster-name=east-1"});
  REQUIRE(named.ok());
  CHECK(named->cluster_name == "east-1");
  auto k = parseFlags({"--node=node1", "--capture=none", "--controller=ctl:15012",
                       "--bootstrap-token-file=/t", "--controller-ca=/r"});
  REQUIRE(k.ok());
  CHECK(k->controller == "ctl:15012");
  CHECK(k->bootstrap_token_file == "/t");
  CHECK(k->controller_ca == "/r");
}

TEST_CASE("bad flags are refused with a reason", "[agent]") {
  struct Row {
    std::vector<std::string> args;
    const char* reason;
  };
  for (const Row& row : std::vector<Row>{
           {{"--certs=/c", "--capture=none"}, "--node is required"},
           {{"--node=n", "--capture=none"}, "--certs is required"},
           {{"--node=n", "--certs=/c", "--capture=ebpf"}, "--capture must be"},
           {{"--node=n", "--certs=/c"}, "needs --cgroup"},
           {{"--node=n", "--certs=/c", "--capture=none", "--workers=x"}, "not a number"},
           {{"--node=n", "--certs=/c", "--capture=none", "--bogus=1"}, "unknown flag --bogus"},
           {{"node=n"}, "expected --name=value"},
           {{"--node=n", "--certs=/c", "--capture=none", "--drain-grace=5"}, "--drain-grace"},
           {{"--node=n", "--certs=/c", "--capture=none", "--drain-grace=-1s"}, "between 0s and 1h"},
           {{"--node=n", "--certs=/c", "--capture=none", "--drain-grace=2h"}, "between 0s and 1h"},
           {{"--node=n", "--capture=none", "--controller=c:15012"}, "--bootstrap-token-file"},
           {{"--node=n", "--capture=none", "--controller=c", "--bootstrap-token-file=/t",
             "--controller-ca=/r"},
            "HOST:PORT"},
           {{"--node=n", "--capture=none", "--controller=c:1", "--certs=/c",
             "--bootstrap-token-file=/t", "--controller-ca=/r"},
            "replaces --certs"},
           {{"--node=n", "--certs=/c", "--capture=none", "--max-buffer-bytes=10"},
            "between 16 KiB"},
           {{"--node=n", "--certs=/c", "--capture=none", "--pod-cidrs=10.244.0.0/16,10.300.0.0/16"},
            "--pod-cidrs: \"10.300.0.0/16\" is not a CIDR"},
           {{"--node=n", "--certs=/c", "--capture=none", "--cluster-name="}, "--cluster-name must"},
           {{"--node=n", "--certs=/c", "--capture=none", "--cluster-name=a b"},
            "--cluster-name must be 1-63"},
           {{"--node=n", "--certs=/c", "--capture=none", "--cluster-name=a,b"}, "got \"a,b\""},
       }) {
    auto c = parseFlags(row.args);
    REQUIRE_FALSE(c.ok());
    CHECK_THAT(std::string(c.status().message()), Catch::Contains(row.reason));
  }
}

}  // namespace
}  // namespace ferry::agent
