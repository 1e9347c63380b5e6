// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Informers keep a cache equal to the server's state through disconnects, 410s and errors.
#include "kube/informer.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "eventually.h"
#include "fakes/kube_api_server/fake_api_server.h"
#include "fakes/kube_api_server/objects.h"

namespace ferry::kube {
namespace {

fakes::FakeApiServerOptions goneAsHttp(bool as_http) {
  fakes::FakeApiServerOptions o;
  o.gone_as_http_status = as_http;
  return o;
}

fakes::FakeApiServerOptions withToken(const std::string& token) {
  fakes::FakeApiServerOptions o;
  o.required_token = token;
  return o;
}

using fakes::FakeApiServer;
using ferry::testing::eventually;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::podJson;

// A cache of name -> spec.nodeName, as a consumer would keep.
class CacheHandler : public InformerHandler {
 public:
  void onReplace(const std::vector<json>& items) override {
    std::lock_guard<std::mutex> lock(mu_);
    cache_.clear();
    for (const auto& item : items) {
      cache_[item["metadata"]["name"]] = item["spec"]["nodeName"];
    }
    ++replaces_;
    cv_.notify_all();
  }
  void onEvent(EventType type, const json& object) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string name = object["metadata"]["name"];
    if (type == EventType::kDeleted) {
      cache_.erase(name);
    } else {
      cache_[name] = object["spec"]["nodeName"];
    }
    cv_.notify_all();
  }
  // Waits until the cache equals `want`.
  bool waitFor(const std::map<std::string, std::string>& want) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, seconds(10), [&] { return cache_ == want; });
  }
  int replaces() {
    std::lock_guard<std::mutex> lock(mu_);
    return replaces_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> cache_;
  int replaces_ = 0;
};

struct Fixture {
  std::unique_ptr<FakeApiServer> server;
  std::unique_ptr<Client> client;
  CacheHandler handler;
  FakeSleeper sleeper;
  std::unique_ptr<Informer> informer;

  explicit Fixture(fakes::FakeApiServerOptions options = {}) {
    auto s = FakeApiServer::start(options);
    REQUIRE(s.ok());
    server = std::move(*s);
    client = std::make_unique<Client>(server->clientConfig());
  }
  void startInformer(InformerOptions options = {}) {
    options.page_size = 2;  // exercise pagination on every list
    informer = std::make_unique<Informer>(*client, kPods, handler, options, &sleeper);
    informer->start();
    REQUIRE(informer->waitForSync(seconds(10)));
  }
  void pod(const std::string& name, const std::string& node) {
    REQUIRE(server->apply(podJson("default", name, node, "10.0.0.1")).ok());
  }
};

TEST_CASE("informer lists, then follows the watch") {
  Fixture f;
  f.pod("a", "node1");
  f.pod("b", "node1");
  f.pod("c", "node2");
  f.startInformer();
  CHECK(f.handler.waitFor({{"a", "node1"}, {"b", "node1"}, {"c", "node2"}}));
  f.pod("a", "node3");
  REQUIRE(f.server->remove(kPods, "default", "b").ok());
  f.pod("d", "node1");
  CHECK(f.handler.waitFor({{"a", "node3"}, {"c", "node2"}, {"d", "node1"}}));
  CHECK(f.server->listRequests(kPods) == 2);  // 3 objects, pages of 2
  // The version moves after the handler returns; wait for it (bounded).
  const std::string now = std::to_string(f.server->resourceVersion());
  CHECK(eventually([&] { return f.informer->resourceVersion() == now; }, seconds(5),
                   "the informer's resourceVersion to reach " + now));
}

TEST_CASE("a dropped watch resumes from the last resourceVersion and loses nothing") {
  Fixture f;
  f.pod("a", "node1");
  f.startInformer();
  REQUIRE(f.server->waitForOpenWatches(1, seconds(10)));
  const uint64_t lists_before = f.server->listRequests(kPods);
  for (int round = 0; round < 3; ++round) {
    f.server->dropWatches();
    // Changes made while the informer is reconnecting must still arrive.
    f.pod("a", "node" + std::to_string(round + 2));
    f.pod("x" + std::to_string(round), "node9");
  }
  CHECK(f.handler.waitFor({{"a", "node4"}, {"x0", "node9"}, {"x1", "node9"}, {"x2", "node9"}}));
  CHECK(f.server->listRequests(kPods) == lists_before);  // resumed, never relisted
  CHECK(f.handler.replaces() == 1);
  CHECK(f.informer->stats().errors.load() >= 1);
  CHECK(f.server->watchRequests(kPods) >= 2);
}

TEST_CASE("410 Gone leads to a relist that also catches deletions missed meanwhile") {
  for (bool as_http : {false, true}) {
    INFO("gone_as_http_status=" << as_http);
    Fixture f(goneAsHttp(as_http));
    f.pod("a", "node1");
    f.pod("b", "node1");
    f.startInformer();
    REQUIRE(f.server->waitForOpenWatches(1, seconds(10)));
    // Make the informer's version too old: it must come back with a list.
    f.server->failNextWatches(1);
    f.server->dropWatches();
    REQUIRE(f.server->remove(kPods, "default", "b").ok());
    f.pod("c", "node2");
    f.server->compact();
    CHECK(f.handler.waitFor({{"a", "node1"}, {"c", "node2"}}));
    CHECK(f.informer->stats().gone.load() >= 1);
    CHECK(f.handler.replaces() >= 2);
    // And it keeps following afterwards.
    f.pod("d", "node3");
    CHECK(f.handler.waitFor({{"a", "node1"}, {"c", "node2"}, {"d", "node3"}}));
  }
}

TEST_CASE("a watcher that lags behind a compaction gets 410 in-stream and relists") {
  Fixture f;
  f.pod("a", "node1");
  f.startInformer();
  REQUIRE(f.server->waitForOpenWatches(1, seconds(10)));
  const uint64_t lists_before = f.server->listRequests(kPods);
  // The informer's next watch waits until history has moved past its resume version.
  f.server->holdWatches();
  f.server->dropWatches();
  f.pod("b", "node1");
  f.server->compact();  // the resume version is now older than history
  f.server->releaseWatches();
  CHECK(f.handler.waitFor({{"a", "node1"}, {"b", "node1"}}));
  f.pod("c", "node1");
  CHECK(f.handler.waitFor({{"a", "node1"}, {"b", "node1"}, {"c", "node1"}}));
  CHECK(f.server->listRequests(kPods) > lists_before);
}

TEST_CASE("bookmarks move the resume version so a compaction needs no relist") {
  Fixture f;
  f.pod("a", "node1");
  f.startInformer();
  REQUIRE(f.server->waitForOpenWatches(1, seconds(10)));
  const uint64_t lists_before = f.server->listRequests(kPods);
  // Other kinds change the cluster-wide version; only a bookmark tells the pod watcher.
  for (int i = 0; i < 3; ++i) {
    REQUIRE(f.server->apply(testing::namespaceJson("ns" + std::to_string(i))).ok());
  }
  const std::string now = std::to_string(f.server->resourceVersion());
  f.server->sendBookmarks();
  REQUIRE(eventually([&] { return f.informer->resourceVersion() == now; }, seconds(10),
                     "the bookmark's resourceVersion " + now));
  f.server->compact();
  f.server->dropWatches();
  f.pod("b", "node2");
  CHECK(f.handler.waitFor({{"a", "node1"}, {"b", "node2"}}));
  CHECK(f.server->listRequests(kPods) == lists_before);
  CHECK(f.informer->stats().gone.load() == 0);
  CHECK(f.informer->stats().bookmarks.load() >= 1);
}

TEST_CASE("failures back off exponentially (fake clock) and recover") {
  Fixture f(withToken("right"));
  // Start with a wrong token: every list fails until the token file is fixed.
  char tmpl[] = "/tmp/ferry-informer-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string token_file = dir + "/token";
  std::ofstream(token_file) << "wrong";
  auto cfg = f.server->clientConfig();
  cfg.token.clear();
  cfg.token_file = token_file;
  Client client(cfg);
  f.pod("a", "node1");
  InformerOptions options;
  options.backoff = {absl::Milliseconds(100), absl::Milliseconds(1600), 2.0, 0.5};
  options.backoff_seed = 7;
  Informer informer(client, kPods, f.handler, options, &f.sleeper);
  informer.start();
  CHECK(eventually([&] { return f.sleeper.sleeps().size() >= 6; }, seconds(5),
                   "six backoff sleeps on the fake clock"));
  CHECK_FALSE(informer.synced());
  CHECK(informer.lastError().find("401") != std::string::npos);
  std::ofstream(token_file) << "right";  // a rotated token is picked up on the next request
  REQUIRE(informer.waitForSync(seconds(10)));
  CHECK(f.handler.waitFor({{"a", "node1"}}));
  informer.stop();
  auto sleeps = f.sleeper.sleeps();
  REQUIRE(sleeps.size() >= 6);
  const std::vector<int64_t> ceilings = {100, 200, 400, 800, 1600, 1600};
  for (size_t i = 0; i < ceilings.size(); ++i) {
    CHECK(sleeps[i].count() <= ceilings[i]);
    CHECK(sleeps[i].count() >= ceilings[i] / 2);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("stop ends a running informer promptly") {
  Fixture f;
  f.startInformer();
  REQUIRE(f.server->waitForOpenWatches(1, seconds(10)));
  f.informer->stop();
  CHECK(f.server->openWatches() <= 1);  // the server notices the close lazily; no hang here
}

}  // namespace
}  // namespace ferry::kube
