// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/ha/leader_election.h"

#include <catch2/catch.hpp>

#include "eventually.h"
#include "fakes/kube_api_server/fake_api_server.h"

namespace ferry::controller {
namespace {

struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  LeaderElector::Clock fn() {
    return [this] { return now; };
  }
};

struct Replicas {
  std::unique_ptr<fakes::FakeApiServer> server;
  std::unique_ptr<kube::Client> client;
  FakeClock clock;

  Replicas() {
    auto s = fakes::FakeApiServer::start();
    REQUIRE(s.ok());
    server = std::move(*s);
    client = std::make_unique<kube::Client>(server->clientConfig());
  }
  LeaderElectionConfig config(const std::string& identity) const {
    LeaderElectionConfig c;
    c.lease_namespace = "ferry-system";
    c.identity = identity;
    return c;
  }
  std::string holder() const {
    auto lease = server->get(kube::kLeases, "ferry-system", "ferry-controller");
    REQUIRE(lease.has_value());
    return (*lease)["spec"]["holderIdentity"].get<std::string>();
  }
};

TEST_CASE("leader election: one replica leads and the other waits for the lease to expire",
          "[controller][ha]") {
  Replicas r;
  LeaderElector a(*r.client, r.config("ctrl-a"), r.clock.fn());
  LeaderElector b(*r.client, r.config("ctrl-b"), r.clock.fn());
  REQUIRE(a.step());
  CHECK_FALSE(b.step());
  CHECK(b.lastError() == "the lease is held by ctrl-a");
  CHECK(r.holder() == "ctrl-a");

  // a keeps renewing: b never takes over however long it waits.
  for (int i = 0; i < 20; ++i) {
    r.clock.now += absl::Seconds(2);
    REQUIRE(a.step());
    REQUIRE_FALSE(b.step());
  }
  // a goes silent (crashed, no release): b takes over only once the record has not changed for
  // lease_duration on b's own clock.
  r.clock.now += absl::Seconds(14);
  CHECK_FALSE(b.step());
  r.clock.now += absl::Seconds(2);
  CHECK(b.step());
  CHECK(r.holder() == "ctrl-b");
  auto lease = r.server->get(kube::kLeases, "ferry-system", "ferry-controller");
  CHECK((*lease)["spec"]["leaseTransitions"] == 1);
  // a comes back and learns it lost the lease.
  CHECK_FALSE(a.step());
  CHECK_FALSE(a.leading());
}

TEST_CASE("leader election: a replica that stops hands the lease over at once",
          "[controller][ha]") {
  Replicas r;
  LeaderElector a(*r.client, r.config("ctrl-a"), r.clock.fn());
  LeaderElector b(*r.client, r.config("ctrl-b"), r.clock.fn());
  REQUIRE(a.step());
  REQUIRE_FALSE(b.step());
  a.stop();
  CHECK_FALSE(a.leading());
  CHECK(r.holder().empty());
  CHECK(b.step());  // no waiting for expiry
  CHECK(r.holder() == "ctrl-b");
}

TEST_CASE("leader election: a leader that cannot renew steps down at its renew deadline",
          "[controller][ha]") {
  Replicas r;
  LeaderElector a(*r.client, r.config("ctrl-a"), r.clock.fn());
  REQUIRE(a.step());
  // Someone else writes the lease object (a label): a re-reads before each renewal, so the
  // changed resourceVersion costs it nothing.
  auto lease = r.server->get(kube::kLeases, "ferry-system", "ferry-controller");
  REQUIRE(lease.has_value());
  nlohmann::json edited = *lease;
  edited["metadata"]["labels"] = {{"touched", "yes"}};
  REQUIRE(r.server->update(edited).ok());
  r.clock.now += absl::Seconds(2);
  CHECK(a.step());

  // Now the API server goes away: renewals fail, a keeps leading until the renew deadline (10 s)
  // and then steps down, before the lease (15 s) could pass to anyone else.
  r.server.reset();
  r.clock.now += absl::Seconds(5);
  CHECK(a.step());
  CHECK_FALSE(a.lastError().empty());
  r.clock.now += absl::Seconds(5);
  CHECK_FALSE(a.step());
}

TEST_CASE("leader election: bad timings are refused with the rule", "[controller][ha]") {
  LeaderElectionConfig c;
  c.lease_namespace = "ferry-system";
  c.identity = "x";
  REQUIRE(c.validate().ok());
  c.renew_deadline = absl::Seconds(20);
  auto s = c.validate();
  REQUIRE_FALSE(s.ok());
  CHECK(std::string(s.message()).find("renew deadline (20s) < lease duration (15s)") !=
        std::string::npos);
  c = {};
  CHECK_FALSE(c.validate().ok());
}

TEST_CASE("leader election: the background loop reports leadership and releases on stop",
          "[controller][ha]") {
  Replicas r;
  LeaderElectionConfig config = r.config("ctrl-a");
  config.retry_period = absl::Milliseconds(20);
  LeaderElector a(*r.client, config);
  std::atomic<int> became_leader{0};
  a.start([&](bool leading) { became_leader += leading ? 1 : 0; });
  REQUIRE(ferry::testing::eventually([&] { return became_leader.load() > 0; },
                                     std::chrono::seconds(5), "the elector to lead"));
  REQUIRE(became_leader.load() == 1);
  CHECK(a.leading());
  a.stop();
  CHECK(r.holder().empty());
}

}  // namespace
}  // namespace ferry::controller
