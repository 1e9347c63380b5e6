// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The fake API server's watch: a chunked stream of newline-separated JSON events.
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fakes/kube_api_server/discovery.h"
#include "fakes/kube_api_server/fake_api_server.h"
#include "fakes/kube_api_server/http_wire.h"
#include "fakes/kube_api_server/selectors.h"
#include "fakes/kube_api_server/table.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string eventLine(const std::string& type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump() + "\n";
}

// An event as a watcher with a selector sees it (the watch cache's rule): an object that
// starts matching is ADDED, one that stops matching is DELETED (as it was, at the event's
// resourceVersion).
std::optional<std::pair<std::string, json>> filtered(const FakeApiServer::Event& e,
                                                     const Selector& selector) {
  if (selector.empty()) {
    return std::pair{e.type, e.object};
  }
  const bool now = e.type != "DELETED" && selector.matches(e.object);
  const bool before = !e.prev.is_null() && selector.matches(e.prev);
  if (now) {
    return std::pair{std::string(before ? "MODIFIED" : "ADDED"), e.object};
  }
  if (before) {
    json old = e.prev;
    old["metadata"]["resourceVersion"] = std::to_string(e.rv);
    return std::pair{std::string("DELETED"), old};
  }
  return std::nullopt;
}

}  // namespace

void FakeApiServer::serveWatch(int fd, const kube::Resource& r, const std::string& ns,
                               const Request& req) {
  const std::string collection = r.collectionPath();
  const bool bookmarks = wire::queryBool(req, "allowWatchBookmarks");
  Clock::time_point deadline = Clock::time_point::max();
  if (auto t = req.query.find("timeoutSeconds"); t != req.query.end()) {
    int seconds = 0;
    if (absl::SimpleAtoi(t->second, &seconds) && seconds > 0) {
      deadline = Clock::now() + std::chrono::seconds(seconds);
    }
  }
  absl::StatusOr<Selector> selector = Selector::parse(wire::queryParam(req, "labelSelector"),
                                                      wire::queryParam(req, "fieldSelector"), r);
  if (!selector.ok()) {
    const auto resp = wire::failure(selector.status());
    wire::writeResponse(fd, resp.status, resp.body.dump(), false);
    return;
  }
  // Objects as the client asked for them: themselves, or one-row Tables (kubectl get -w).
  auto accept = req.headers.find("accept");
  const bool table = accept != req.headers.end() && wantsTable(accept->second);
  auto render = [&](const json& obj) {
    return table ? asTable(r, {obj}, discovery_->crdVersion(r),
                           wire::queryParam(req, "includeObject") == "Object",
                           metaField(obj, "resourceVersion"))
                 : obj;
  };
  auto gone = [&](const std::string& message) {
    const json status = wire::statusObject(410, "Expired", message);
    if (options_.gone_as_http_status) {
      wire::writeResponse(fd, 410, status.dump(), false);
      return;
    }
    if (wire::writeChunkedHeader(fd) && wire::writeChunk(fd, eventLine("ERROR", status))) {
      wire::writeLastChunk(fd);
    }
  };

  std::unique_lock<std::mutex> lock(mu_);
  ++watch_requests_[collection];
  cv_.wait(lock, [&] { return !hold_watches_ || stopping_.load(); });
  int& fail_this = fail_next_watches_of_[collection];
  if (fail_next_watches_ > 0 || fail_this > 0) {
    --(fail_this > 0 ? fail_this : fail_next_watches_);
    lock.unlock();
    gone("too old resource version (injected fault)");
    return;
  }
  uint64_t cursor = 0;
  std::vector<std::string> pending;
  const auto rv_param = req.query.find("resourceVersion");
  if (rv_param == req.query.end() || rv_param->second.empty() || rv_param->second == "0") {
    // No version: the current state as synthetic ADDED events, then changes.
    cursor = rv_;
    for (const auto& [key, obj] : objects_[collection]) {
      if ((ns.empty() || key.compare(0, ns.size() + 1, ns + "/") == 0) && selector->matches(obj)) {
        pending.push_back(eventLine("ADDED", render(obj)));
      }
    }
  } else if (!absl::SimpleAtoi(rv_param->second, &cursor)) {
    lock.unlock();
    wire::writeResponse(
        fd, 400,
        wire::statusObject(400, "BadRequest",
                           absl::StrCat("invalid resourceVersion \"", rv_param->second, "\""))
            .dump(),
        false);
    return;
  } else if (cursor < compacted_rv_) {
    const std::string message =
        absl::StrCat("too old resource version: ", cursor, " (", compacted_rv_, ")");
    lock.unlock();
    gone(message);
    return;
  }
  const uint64_t drop_epoch = drop_epoch_;
  uint64_t bookmark_epoch = bookmark_epoch_;
  ++open_watches_;
  cv_.notify_all();

  bool ok = true;
  bool abrupt = false;
  bool expired = false;
  Clock::time_point last_bookmark = Clock::now();
  lock.unlock();
  ok = wire::writeChunkedHeader(fd);
  lock.lock();
  while (ok) {
    if (stopping_.load() || drop_epoch_ != drop_epoch) {
      abrupt = true;
      break;
    }
    if (cursor < compacted_rv_) {
      expired = true;  // this watcher lagged behind a compaction
      break;
    }
    auto it = std::upper_bound(history_.begin(), history_.end(), cursor,
                               [](uint64_t v, const Event& e) { return v < e.rv; });
    for (; it != history_.end(); ++it) {
      if (it->collection == collection && (ns.empty() || it->ns == ns)) {
        if (auto event = filtered(*it, *selector)) {
          pending.push_back(eventLine(event->first, render(event->second)));
        }
      }
    }
    cursor = std::max(cursor, rv_);
    const bool periodic = options_.bookmark_interval.count() > 0 &&
                          Clock::now() - last_bookmark >= options_.bookmark_interval;
    if (bookmarks && (bookmark_epoch != bookmark_epoch_ || periodic)) {
      bookmark_epoch = bookmark_epoch_;
      last_bookmark = Clock::now();
      pending.push_back(
          eventLine("BOOKMARK", json{{"kind", r.kind},
                                     {"apiVersion", r.apiVersion()},
                                     {"metadata", {{"resourceVersion", std::to_string(cursor)}}}}));
    }
    if (!pending.empty()) {
      std::vector<std::string> out;
      out.swap(pending);
      lock.unlock();
      for (const auto& line : out) {
        ok = ok && wire::writeChunk(fd, line);
      }
      lock.lock();
      continue;
    }
    if (Clock::now() >= deadline) {
      break;
    }
    Clock::time_point wake = deadline;
    if (bookmarks && options_.bookmark_interval.count() > 0) {
      wake = std::min(wake, last_bookmark + options_.bookmark_interval);
    }
    cv_.wait_until(lock, wake);
  }
  --open_watches_;
  cv_.notify_all();
  lock.unlock();
  if (abrupt) {
    ::shutdown(fd, SHUT_RDWR);  // the client sees a truncated chunked body
    return;
  }
  if (ok && expired) {
    ok = wire::writeChunk(
        fd, eventLine("ERROR", wire::statusObject(410, "Expired",
                                                  "The resourceVersion for the provided watch "
                                                  "is too old.")));
  }
  if (ok) {
    wire::writeLastChunk(fd);
  }
}

}  // namespace ferry::fakes
