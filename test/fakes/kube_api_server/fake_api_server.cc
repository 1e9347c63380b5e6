// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "fakes/kube_api_server/fake_api_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "fakes/kube_api_server/discovery.h"
#include "fakes/kube_api_server/http_wire.h"
#include "fakes/kube_api_server/selectors.h"
#include "fakes/kube_api_server/table.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;

using Target = FakeApiServer::Target;

std::string accept(const FakeApiServer::Request& req) {
  auto it = req.headers.find("accept");
  return it == req.headers.end() ? "" : it->second;
}

std::optional<Target> parseTarget(const std::string& path) {
  for (const kube::Resource* r : kube::kKnownResources) {
    const std::string prefix = r->prefix() + "/";
    if (path.compare(0, prefix.size(), prefix) != 0) {
      continue;
    }
    std::vector<std::string> rest = absl::StrSplit(path.substr(prefix.size()), '/');
    Target t;
    t.resource = r;
    if (rest.size() >= 3 && rest[0] == "namespaces" && r->namespaced && rest[2] == r->plural &&
        rest.size() <= 4) {
      t.ns = rest[1];
      t.name = rest.size() == 4 ? rest[3] : "";
      return t;
    }
    if (rest[0] == r->plural && rest.size() <= 2) {
      if (rest.size() == 2 && r->namespaced) {
        continue;  // namespaced objects are only addressable inside their namespace
      }
      t.name = rest.size() == 2 ? rest[1] : "";
      return t;
    }
  }
  return std::nullopt;
}

}  // namespace

FakeApiServer::FakeApiServer(FakeApiServerOptions options)
    : options_(std::move(options)), discovery_(std::make_unique<Discovery>(options_.crds)) {}

absl::StatusOr<std::unique_ptr<FakeApiServer>> FakeApiServer::start(FakeApiServerOptions options) {
  std::unique_ptr<FakeApiServer> server(new FakeApiServer(std::move(options)));
  if (auto s = server->listen(); !s.ok()) {
    return s;
  }
  for (const std::string& ns : server->options_.initial_namespaces) {
    if (auto created = server->create(
            {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
        !created.ok()) {
      return created.status();
    }
  }
  server->accept_thread_ = std::thread([s = server.get()] { s->acceptLoop(); });
  return server;
}

FakeApiServer::~FakeApiServer() {
  stopping_.store(true);
  ::shutdown(listen_fd_, SHUT_RDWR);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : connections_) {
      ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
  }
  if (accept_thread_.joinable()) {
    accept_thread_.join();
  }
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(connection_threads_);
  }
  for (auto& t : threads) {
    t.join();
  }
  ::close(listen_fd_);
}

absl::Status FakeApiServer::listen() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 128) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError(absl::StrCat("bind/listen on 127.0.0.1:0: ", std::strerror(errno)));
  }
  port_ = ntohs(addr.sin_port);
  return absl::OkStatus();
}

std::string FakeApiServer::url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

kube::KubeConfig FakeApiServer::clientConfig() const {
  kube::KubeConfig cfg;
  cfg.server = url();
  cfg.token = options_.required_token;
  return cfg;
}

void FakeApiServer::acceptLoop() {
  while (!stopping_.load()) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_.load()) {
      ::close(fd);
      return;
    }
    connections_.insert(fd);
    connection_threads_.emplace_back([this, fd] { serveConnection(fd); });
  }
}

void FakeApiServer::serveConnection(int fd) {
  std::string buffer;
  Request req;
  while (!stopping_.load() && wire::readRequest(fd, buffer, req)) {
    bool streamed = false;
    Response resp = handle(req, fd, &streamed);
    if (streamed) {
      break;  // a watch owns the connection until it ends
    }
    if (!wire::writeResponse(fd, resp.status, resp.body.dump(), req.keep_alive) ||
        !req.keep_alive) {
      break;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  connections_.erase(fd);
  ::close(fd);
}

FakeApiServer::Response FakeApiServer::handle(const Request& req, int fd, bool* streamed) {
  if (!options_.required_token.empty()) {
    auto auth = req.headers.find("authorization");
    if (auth == req.headers.end() || auth->second != "Bearer " + options_.required_token) {
      return wire::failure(401, "Unauthorized");
    }
  }
  if (req.method == "GET") {
    if (std::optional<json> doc = discovery_->serve(req.path)) {
      return {200, std::move(*doc)};
    }
  }
  std::optional<Target> target = parseTarget(req.path);
  if (!target) {
    return wire::failure(
        404, absl::StrCat("the server could not find the requested resource (", req.path, ")"));
  }
  const kube::Resource& r = *target->resource;
  if (req.method == "GET" && target->name.empty()) {
    if (wire::queryBool(req, "watch")) {
      *streamed = true;
      serveWatch(fd, r, target->ns, req);
      return {};
    }
    return handleList(r, target->ns, req);
  }
  if (req.method == "GET") {
    auto obj = get(r, target->ns, target->name);
    if (!obj) {
      return wire::failure(404, absl::StrCat(r.plural, " \"", target->name, "\" not found"));
    }
    if (wantsTable(accept(req))) {
      return {200, asTable(r, {*obj}, discovery_->crdVersion(r),
                           wire::queryParam(req, "includeObject") == "Object",
                           metaField(*obj, "resourceVersion"))};
    }
    return {200, *obj};
  }
  return handleWrite(*target, req);
}

FakeApiServer::Response FakeApiServer::handleList(const kube::Resource& r, const std::string& ns,
                                                  const Request& req) {
  int64_t limit = 0;
  if (auto l = req.query.find("limit"); l != req.query.end()) {
    absl::SimpleAtoi(l->second, &limit);
  }
  const std::string collection = r.collectionPath();
  absl::StatusOr<Selector> selector = Selector::parse(wire::queryParam(req, "labelSelector"),
                                                      wire::queryParam(req, "fieldSelector"), r);
  if (!selector.ok()) {
    return wire::failure(selector.status());
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++list_requests_[collection];
  uint64_t list_rv = rv_;
  size_t start = 0;
  std::string snapshot_key;
  if (auto c = req.query.find("continue"); c != req.query.end() && !c->second.empty()) {
    std::string decoded;
    json token;
    if (absl::Base64Unescape(c->second, &decoded)) {
      token = json::parse(decoded, nullptr, false);
    }
    if (!token.is_object() || !token.contains("rv") || !token.contains("start")) {
      return wire::failure(400, "invalid continue token");
    }
    list_rv = token["rv"].get<uint64_t>();
    start = token["start"].get<size_t>();
    snapshot_key = absl::StrCat(collection, "|", ns, "|", list_rv);
    if (list_rv < compacted_rv_ || !list_snapshots_.count(snapshot_key)) {
      return wire::failure(410,
                           "The provided continue parameter is too old to display a consistent "
                           "list result. You can start a new list without the continue parameter.");
    }
  } else {
    snapshot_key = absl::StrCat(collection, "|", ns, "|", list_rv);
    std::vector<json>& snap = list_snapshots_[snapshot_key];
    snap.clear();
    for (const auto& [key, obj] : objects_[collection]) {
      if ((ns.empty() || FakeApiServer::metaField(obj, "namespace") == ns) &&
          selector->matches(obj)) {
        snap.push_back(obj);
      }
    }
  }
  const std::vector<json>& snap = list_snapshots_[snapshot_key];
  size_t end = snap.size();
  if (limit > 0) {
    end = std::min(snap.size(), start + static_cast<size_t>(limit));
  }
  json metadata = {{"resourceVersion", std::to_string(list_rv)}};
  if (end < snap.size()) {
    metadata["continue"] = absl::Base64Escape(json{{"rv", list_rv}, {"start", end}}.dump());
    metadata["remainingItemCount"] = snap.size() - end;
  }
  if (wantsTable(accept(req))) {
    json table = asTable(
        r, std::vector<json>(snap.begin() + start, snap.begin() + end), discovery_->crdVersion(r),
        wire::queryParam(req, "includeObject") == "Object", std::to_string(list_rv));
    table["metadata"] = metadata;
    if (end == snap.size()) {
      list_snapshots_.erase(snapshot_key);
    }
    return {200, table};
  }
  json items = json::array();
  for (size_t i = start; i < end; ++i) {
    json item = snap[i];
    item.erase("kind");  // as the real server: list items do not repeat kind/apiVersion
    item.erase("apiVersion");
    items.push_back(std::move(item));
  }
  if (end == snap.size()) {
    list_snapshots_.erase(snapshot_key);
  }
  return {200, json{{"kind", r.kind + "List"},
                    {"apiVersion", r.apiVersion()},
                    {"metadata", metadata},
                    {"items", std::move(items)}}};
}

}  // namespace ferry::fakes
