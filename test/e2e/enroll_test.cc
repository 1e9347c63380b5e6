// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Enrollment: in-pod listeners follow add/delete, and a restarted agent replays its journal.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "e2e/mesh.h"
#include "enroll/client.h"
#include "eventually.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

std::string listeners(Mesh& m, const harness::Pod& pod) {
  auto out = m.run(pod, {"ss", "-ltnH"});
  return out.ok() ? *out : "";
}

bool hasAgentPorts(const std::string& ss) {
  return ss.find(":15001") != std::string::npos && ss.find(":15006") != std::string::npos &&
         ss.find(":15008") != std::string::npos;
}

TEST_CASE("listeners appear in the pod on add, go on delete, come back after a restart",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  CHECK(hasAgentPorts(listeners(m, m.pod(1, 1))));
  CHECK(hasAgentPorts(listeners(m, m.pod(1, 2))));
  absl::Status del = enroll::delPod(m.enrollSocket(1), Mesh::uidOf(m.pod(1, 2)));
  REQUIRE_OK(del);
  std::string after;
  // Workers close their listeners asynchronously.
  const bool closed = eventually(
      [&] { return (after = listeners(m, m.pod(1, 2))).find(":1500") == std::string::npos; }, 5s,
      "the deleted pod's listeners to close");
  INFO("listeners left: " << after);
  CHECK(closed);
  CHECK_FALSE(enroll::checkPod(m.enrollSocket(1), Mesh::uidOf(m.pod(1, 2))).ok());

  // Journal: n1p1 plus a pod whose namespace no longer exists (died while the agent was down).
  absl::Status stopped = m.restartAgent(1);
  REQUIRE_OK(stopped);
  CHECK(enroll::checkPod(m.enrollSocket(1), Mesh::uidOf(m.pod(1, 1))).ok());
  CHECK_FALSE(enroll::checkPod(m.enrollSocket(1), Mesh::uidOf(m.pod(1, 2))).ok());
  CHECK(hasAgentPorts(listeners(m, m.pod(1, 1))));
  CHECK(m.stat(1, "enrolled_pods") == 1);
}

TEST_CASE("replay drops journaled pods whose network namespace vanished", "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const std::string journal = m.cluster().scratchDir() + "/node1-pods.json";
  absl::Status stopped = m.stopAgent(1);
  REQUIRE_OK(stopped);
  auto j = nlohmann::json::parse(std::ifstream(journal));
  REQUIRE(j["pods"].size() == 2);
  j["pods"].push_back({{"uid", "uid-ghost"},
                       {"name", "ghost"},
                       {"namespace", "default"},
                       {"service_account", "sa-ghost"},
                       {"netns", "/run/netns/ferry-does-not-exist"},
                       {"ips", {"10.244.1.99"}}});
  std::ofstream(journal) << j.dump();
  absl::Status restarted = m.startAgent(1);
  REQUIRE_OK(restarted);
  CHECK(m.stat(1, "enrolled_pods") == 2);
  CHECK_THAT(m.agentLog(1), Catch::Contains("dropping pod default/ghost"));
  CHECK_FALSE(enroll::checkPod(m.enrollSocket(1), "uid-ghost").ok());
}

}  // namespace
}  // namespace ferry::e2e
