// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The API client against the fake API server, over a real socket.
#include "kube/client.h"

#include <catch2/catch.hpp>
#include <thread>

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
using testing::podJson;

std::unique_ptr<FakeApiServer> startServer(fakes::FakeApiServerOptions o = {}) {
  auto s = FakeApiServer::start(std::move(o));
  REQUIRE(s.ok());
  return std::move(*s);
}

TEST_CASE("list pages through limit/continue and returns the snapshot's resourceVersion") {
  auto server = startServer();
  for (int i = 0; i < 5; ++i) {
    REQUIRE(server->create(podJson("default", "p" + std::to_string(i), "node1", "10.0.0.1")).ok());
  }
  Client client(server->clientConfig());
  auto page = client.listPage(kPods, 2, "");
  REQUIRE(page.ok());
  CHECK(page->items.size() == 2);
  CHECK_FALSE(page->continue_token.empty());
  CHECK(page->items[0]["kind"] == "Pod");  // filled in: list items omit it
  // A change between pages does not leak into the snapshot.
  REQUIRE(server->create(podJson("default", "p9", "node1", "10.0.0.9")).ok());
  auto rest = client.listPage(kPods, 10, page->continue_token);
  REQUIRE(rest.ok());
  CHECK(rest->items.size() == 3);
  CHECK(rest->continue_token.empty());
  CHECK(rest->resource_version == page->resource_version);

  auto all = client.list(kPods, 2);
  REQUIRE(all.ok());
  CHECK(all->items.size() == 6);
  CHECK(all->resource_version == std::to_string(server->resourceVersion()));
  CHECK(server->listRequests(kPods) == 2 + 3);
}

TEST_CASE("an expired continue token is a 410") {
  auto server = startServer();
  for (int i = 0; i < 3; ++i) {
    REQUIRE(server->create(podJson("default", "p" + std::to_string(i), "node1", "10.0.0.1")).ok());
  }
  Client client(server->clientConfig());
  auto page = client.listPage(kPods, 1, "");
  REQUIRE(page.ok());
  server->compact();
  auto next = client.listPage(kPods, 1, page->continue_token);
  REQUIRE_FALSE(next.ok());
  CHECK(isGone(next.status()));
}

TEST_CASE("watch streams events in order with increasing resourceVersions, and bookmarks") {
  auto server = startServer();
  Client client(server->clientConfig());
  const std::string start_rv = std::to_string(server->resourceVersion());
  REQUIRE(server->create(podJson("default", "a", "node1", "10.0.0.1")).ok());
  auto updated = podJson("default", "a", "node2", "10.0.0.1");
  REQUIRE(server->update(updated).ok());
  REQUIRE(server->remove(kPods, "default", "a").ok());
  std::vector<std::string> seen;
  uint64_t last_rv = 0;
  bool rv_increasing = true;
  auto s = client.watch(kPods, start_rv, 0, [&](const WatchEvent& ev) {
    seen.push_back(eventTypeName(ev.type));
    const uint64_t rv = std::stoull(ev.object["metadata"]["resourceVersion"].get<std::string>());
    // A bookmark may repeat the last event's version; events strictly increase.
    rv_increasing =
        rv_increasing && (ev.type == EventType::kBookmark ? rv >= last_rv : rv > last_rv);
    last_rv = rv;
    if (seen.size() == 3) {
      server->sendBookmarks();
    }
    return ev.type != EventType::kBookmark;
  });
  REQUIRE(s.ok());
  CHECK(seen == std::vector<std::string>{"ADDED", "MODIFIED", "DELETED", "BOOKMARK"});
  CHECK(rv_increasing);
}

TEST_CASE("410 Gone is recognised both as an ERROR event and as an HTTP status") {
  for (bool as_http : {false, true}) {
    INFO("gone_as_http_status=" << as_http);
    auto server = startServer(goneAsHttp(as_http));
    REQUIRE(server->create(podJson("default", "a", "node1", "10.0.0.1")).ok());
    const std::string old_rv = std::to_string(server->resourceVersion() - 1);
    server->compact();
    Client client(server->clientConfig());
    int events = 0;
    auto s = client.watch(kPods, old_rv, 0, [&](const WatchEvent&) { return ++events < 100; });
    CHECK(isGone(s));
    CHECK(events == 0);
  }
}

TEST_CASE("a dropped watch is an Unavailable error, not a clean end") {
  auto server = startServer();
  Client client(server->clientConfig());
  std::thread dropper([&] {
    REQUIRE(server->waitForOpenWatches(1, std::chrono::seconds(10)));
    server->dropWatches();
  });
  auto s = client.watch(kPods, std::to_string(server->resourceVersion()), 0,
                        [](const WatchEvent&) { return true; });
  dropper.join();
  CHECK(s.code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("cancelling a watch from another thread ends it") {
  auto server = startServer();
  Client client(server->clientConfig());
  CancelToken cancel;
  std::thread canceller([&] {
    REQUIRE(server->waitForOpenWatches(1, std::chrono::seconds(10)));
    cancel.cancel();
  });
  auto s = client.watch(
      kPods, "", 0, [](const WatchEvent&) { return true; }, &cancel);
  canceller.join();
  CHECK(s.code() == absl::StatusCode::kCancelled);
}

TEST_CASE("create, get, update with optimistic concurrency, delete over HTTP") {
  auto server = startServer(withToken("secret"));
  Client client(server->clientConfig());
  auto created = client.create(kPods, podJson("team", "web", "node1", "10.0.0.5"));
  REQUIRE(created.ok());
  CHECK_FALSE((*created)["metadata"]["uid"].get<std::string>().empty());
  CHECK(client.create(kPods, podJson("team", "web", "node1", "10.0.0.5")).status().code() ==
        absl::StatusCode::kAlreadyExists);

  auto stale = *created;
  auto fresh = *created;
  fresh["spec"]["nodeName"] = "node2";
  REQUIRE(client.update(kPods, fresh).ok());
  stale["spec"]["nodeName"] = "node3";
  auto conflict = client.update(kPods, stale);
  CHECK(httpStatusOf(conflict.status()) == 409);
  auto got = client.get(kPods, "team", "web");
  REQUIRE(got.ok());
  CHECK((*got)["spec"]["nodeName"] == "node2");

  REQUIRE(client.remove(kPods, "team", "web").ok());
  CHECK(client.get(kPods, "team", "web").status().code() == absl::StatusCode::kNotFound);

  auto bad = server->clientConfig();
  bad.token = "wrong";
  auto denied = Client(bad).list(kPods);
  CHECK(denied.status().code() == absl::StatusCode::kUnauthenticated);
}

TEST_CASE("an unreachable server is Unavailable with the URL in the message") {
  uint16_t port;
  {
    auto server = startServer();
    port = server->port();
  }
  KubeConfig cfg;
  cfg.server = "http://127.0.0.1:" + std::to_string(port);
  auto r = Client(cfg).list(kNamespaces);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(r.status().message()).find("/api/v1/namespaces") != std::string::npos);
}

}  // namespace
}  // namespace ferry::kube
