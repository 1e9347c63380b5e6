// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The hostile-request table for authorities and tunnels (issue 16): each row is one request
// through the HTTP/1 or the HTTP/2 filter, decided by the real policy engine as the agent asks
// it (agent::toPolicyRequest), and asserts the decision, what decided it, and exactly what the
// app receives. Two policy sets:
//   kHostDeny: DENY hosts [admin.example], no ALLOW policy (so tunnels have no rule naming them);
//   kTunnels:  the same DENY, and an ALLOW with rule 0 {methods: [CONNECT], hosts:
//              [tunnel.example]}, rule 1 {methods: ["*"], paths: ["/*"]}, rule 2 {methods: [GET],
//              paths: [/switch]}.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "../policy/policy_test_util.h"
#include "agent/http/l7_authorizer.h"
#include "h2_rig.h"
#include "http/http1_filter.h"

namespace ferry::http {
namespace {

using policy::testing::ap;
using Fields = std::vector<std::pair<std::string, std::string>>;

enum class Set { kHostDeny, kTunnels };
enum class Outcome { kForward, kDeny, kReject };

const std::string kDenyAdminHost =
    ap("deny-admin-host", "DENY", "[{to: [{operation: {hosts: [admin.example]}}]}]");
const std::string kAllowTunnels =
    ap("allow-tunnels", "ALLOW",
       "[{to: [{operation: {methods: [CONNECT], hosts: [tunnel.example]}}]},"
       " {to: [{operation: {methods: [\"*\"], paths: [\"/*\"]}}]},"
       " {to: [{operation: {methods: [GET], paths: [/switch]}}]}]");

// The engine behind a filter, remembering its last answer.
struct EngineAuthorizer {
  explicit EngineAuthorizer(Set set)
      : snapshot(policy::testing::snapshotOf(kDenyAdminHost +
                                             (set == Set::kTunnels ? kAllowTunnels : ""))),
        policies(snapshot->forWorkload("demo", {{"app", "web"}})) {}
  Authorizer authorizer() {
    return [this](const RequestView& view) {
      policy::HttpRequest http = agent::toPolicyRequest(view);
      policy::Request request;
      request.destination_port = 8080;
      request.http = &http;
      policy::Decision d = policies.evaluate(request);
      last = AuthzDecision{d.allowed, "", "", d.str()};
      ++calls;
      return last;
    };
  }
  std::shared_ptr<const policy::PolicySnapshot> snapshot;
  policy::WorkloadPolicies policies;
  AuthzDecision last;
  int calls = 0;
};

struct H1Row {
  const char* name;
  Set set;
  std::string request;
  Outcome outcome;
  // kForward: the whole head the app receives; kDeny: a piece of the decision's reason;
  // kReject: unused (the status says it).
  std::string expected;
  uint16_t status = 0;
};

constexpr const char* kByDeny = "denied by DENY policy demo/deny-admin-host rule 0";
constexpr const char* kTunnelNotNamed = "needs an ALLOW rule naming its method";

std::string upgrade(const std::string& method, const std::string& path, const std::string& host,
                    const std::string& protocol) {
  return method + " " + path + " HTTP/1.1\r\nHost: " + host +
         "\r\nConnection: Upgrade\r\nUpgrade: " + protocol + "\r\n\r\n";
}

TEST_CASE("hostile authorities and tunnels over HTTP/1.1, decided by the engine",
          "[http1][hostile][policy]") {
  const H1Row rows[] = {
      // CONNECT: authorized on its target, never on Host.
      {"CONNECT denied target with a harmless Host", Set::kHostDeny,
       "CONNECT admin.example:80 HTTP/1.1\r\nHost: harmless.example\r\n\r\n", Outcome::kDeny,
       kByDeny},
      {"CONNECT denied target, even where CONNECT is allowed", Set::kTunnels,
       "CONNECT admin.example:80 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n", Outcome::kDeny,
       kByDeny},
      {"CONNECT denied target in another case with a trailing dot", Set::kHostDeny,
       "CONNECT ADMIN.example.:80 HTTP/1.1\r\nHost: harmless.example\r\n\r\n", Outcome::kDeny,
       kByDeny},
      {"CONNECT without an ALLOW rule naming CONNECT", Set::kHostDeny,
       "CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n", Outcome::kDeny,
       kTunnelNotNamed},
      {"CONNECT allowed by a rule naming CONNECT and its host", Set::kTunnels,
       "CONNECT tunnel.example:443 HTTP/1.1\r\nHost: harmless.example\r\n\r\n", Outcome::kForward,
       "CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n"},
      {"CONNECT target forwarded in normal form", Set::kTunnels,
       "CONNECT Tunnel.Example.:0443 HTTP/1.1\r\nHost: x\r\n\r\n", Outcome::kForward,
       "CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n"},
      {"CONNECT to a host only methods [*] covers", Set::kTunnels,
       "CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n", Outcome::kDeny,
       kTunnelNotNamed},
      // Upgrades: WebSocket is the GET it starts as; anything else needs its method named.
      {"WebSocket upgrade is the GET it starts as", Set::kHostDeny,
       upgrade("GET", "/chat", "svc", "websocket"), Outcome::kForward,
       upgrade("GET", "/chat", "svc", "websocket")},
      {"WebSocket upgrade to a denied host", Set::kHostDeny,
       upgrade("GET", "/chat", "Admin.Example.", "websocket"), Outcome::kDeny, kByDeny},
      {"other upgrade without an ALLOW policy", Set::kHostDeny,
       upgrade("GET", "/chat", "svc", "foo/1"), Outcome::kDeny, kTunnelNotNamed},
      {"WebSocket offered beside another protocol", Set::kHostDeny,
       upgrade("GET", "/chat", "svc", "websocket, foo/1"), Outcome::kDeny, kTunnelNotNamed},
      {"WebSocket upgrade on a POST", Set::kHostDeny, upgrade("POST", "/chat", "svc", "websocket"),
       Outcome::kDeny, kTunnelNotNamed},
      {"other upgrade where only methods [*] matches", Set::kTunnels,
       upgrade("GET", "/chat", "svc", "foo/1"), Outcome::kDeny, kTunnelNotNamed},
      {"other upgrade allowed by a rule naming GET", Set::kTunnels,
       upgrade("GET", "/switch", "svc", "foo/1"), Outcome::kForward,
       upgrade("GET", "/switch", "svc", "foo/1")},
      {"WebSocket upgrade allowed by methods [*]", Set::kTunnels,
       upgrade("GET", "/chat", "svc", "websocket"), Outcome::kForward,
       upgrade("GET", "/chat", "svc", "websocket")},
      // Host shapes: matched and forwarded in one normal form.
      {"Host with a trailing dot", Set::kHostDeny,
       "GET /x HTTP/1.1\r\nHost: admin.example.\r\n\r\n", Outcome::kDeny, kByDeny},
      {"Host with an empty port", Set::kHostDeny, "GET /x HTTP/1.1\r\nHost: admin.example:\r\n\r\n",
       Outcome::kDeny, kByDeny},
      {"Host with a trailing dot and a port", Set::kHostDeny,
       "GET /x HTTP/1.1\r\nHost: admin.example.:8080\r\n\r\n", Outcome::kDeny, kByDeny},
      {"Host in mixed case", Set::kHostDeny, "GET /x HTTP/1.1\r\nHost: ADMIN.Example\r\n\r\n",
       Outcome::kDeny, kByDeny},
      {"mixed case, trailing dot and empty port forwarded in normal form", Set::kHostDeny,
       "GET /x HTTP/1.1\r\nX-A: 1\r\nHost: Svc.Example.:\r\n\r\n", Outcome::kForward,
       "GET /x HTTP/1.1\r\nHost: svc.example\r\nX-A: 1\r\n\r\n"},
      {"port with leading zeros", Set::kHostDeny, "GET /x HTTP/1.1\r\nHost: svc:0080\r\n\r\n",
       Outcome::kForward, "GET /x HTTP/1.1\r\nHost: svc:80\r\n\r\n"},
      {"Host with an empty label", Set::kHostDeny,
       "GET /x HTTP/1.1\r\nHost: admin.example..\r\n\r\n", Outcome::kReject, "", 400},
      {"Host with a port above 65535", Set::kHostDeny, "GET /x HTTP/1.1\r\nHost: svc:65536\r\n\r\n",
       Outcome::kReject, "", 400},
      // Request-target rules (RFC 9112 3.2.2): the absolute-form authority wins over Host.
      {"absolute-form to a denied host with a harmless Host", Set::kHostDeny,
       "GET http://admin.example/x HTTP/1.1\r\nHost: svc\r\n\r\n", Outcome::kDeny, kByDeny},
      {"absolute-form forwarded with its authority as Host", Set::kHostDeny,
       "GET http://Svc.Example./x HTTP/1.1\r\nHost: admin.example\r\n\r\n", Outcome::kForward,
       "GET /x HTTP/1.1\r\nHost: svc.example\r\n\r\n"},
      {"HTTP/1.0 without Host", Set::kHostDeny, "GET /x HTTP/1.0\r\n\r\n", Outcome::kReject, "",
       400},
      {"HTTP/1.0 absolute-form without Host", Set::kHostDeny, "GET http://svc/x HTTP/1.0\r\n\r\n",
       Outcome::kForward, "GET /x HTTP/1.0\r\nHost: svc\r\n\r\n"},
      {"HTTP/1.1 without Host", Set::kHostDeny, "GET /x HTTP/1.1\r\n\r\n", Outcome::kReject, "",
       400},
  };
  for (const H1Row& row : rows) {
    SECTION(row.name) {
      EngineAuthorizer engine(row.set);
      Http1Filter filter({}, engine.authorizer());
      FilterOutput out;
      filter.onDownstreamData(row.request, out);
      INFO("decision: " << engine.last.reason << "; app got: " << out.to_upstream);
      switch (row.outcome) {
        case Outcome::kForward:
          CHECK(engine.last.allow);
          CHECK(out.to_upstream == row.expected);
          CHECK(out.to_downstream.empty());
          CHECK_FALSE(out.close);
          break;
        case Outcome::kDeny: {
          CHECK_FALSE(engine.last.allow);
          CHECK(engine.last.reason.find(row.expected) != std::string::npos);
          CHECK(out.to_upstream.empty());
          CHECK(out.to_downstream.rfind("HTTP/1.1 403 Forbidden\r\n", 0) == 0);
          CHECK(out.to_downstream.ends_with("RBAC: access denied"));
          // A refused tunnel may already be followed by the new protocol's bytes: the
          // connection ends (as Envoy does for a refused upgrade).
          const bool tunnel = row.request.starts_with("CONNECT") ||
                              row.request.find("Upgrade:") != std::string::npos;
          CHECK(out.close == tunnel);
          CHECK(filter.stats().denied == 1);
          break;
        }
        case Outcome::kReject: {
          CHECK(engine.calls == 0);  // refused before any policy is asked
          CHECK(out.to_upstream.empty());
          const std::string status_line = "HTTP/1.1 " + std::to_string(row.status) + " ";
          CHECK(out.to_downstream.rfind(status_line, 0) == 0);
          CHECK(out.close);
          CHECK(filter.stats().rejected == 1);
          break;
        }
      }
    }
  }
}

struct H2Row {
  const char* name;
  Set set;
  Fields request;
  std::string status;     // what the client gets on its stream
  std::string authority;  // forwarded :authority ("" when nothing reaches the app)
  std::string reason;     // a piece of the decision's reason ("" when no policy was asked)
};

Fields h2get(Fields authority_fields) {
  Fields f = {{":method", "GET"}, {":scheme", "http"}, {":path", "/x"}};
  f.insert(f.end(), authority_fields.begin(), authority_fields.end());
  return f;
}

Fields h2connect(const std::string& authority) {
  return {{":method", "CONNECT"}, {":authority", authority}};
}

TEST_CASE("hostile authorities and tunnels over HTTP/2, decided by the engine",
          "[http2][hostile][policy]") {
  const H2Row rows[] = {
      {":authority and a Host naming another host", Set::kHostDeny,
       h2get({{":authority", "svc"}, {"host", "admin.example"}}), "400", "", ""},
      {":authority denied, Host harmless", Set::kHostDeny,
       h2get({{":authority", "admin.example"}, {"host", "svc"}}), "400", "", ""},
      {":authority and Host equal once normalized", Set::kHostDeny,
       h2get({{":authority", "svc"}, {"host", "Svc."}}), "200", "svc", "no ALLOW policy"},
      {"Host alone, in mixed case with a trailing dot", Set::kHostDeny,
       h2get({{"host", "Admin.Example."}}), "403", "", kByDeny},
      {":authority with an empty port", Set::kHostDeny, h2get({{":authority", "admin.example:"}}),
       "403", "", kByDeny},
      {":authority with a trailing dot", Set::kHostDeny, h2get({{":authority", "admin.example."}}),
       "403", "", kByDeny},
      {":authority forwarded in normal form", Set::kHostDeny,
       h2get({{":authority", "Svc.Example.:"}}), "200", "svc.example", "no ALLOW policy"},
      {":authority with an empty label", Set::kHostDeny, h2get({{":authority", "svc.."}}), "400",
       "", ""},
      {"CONNECT to a denied host", Set::kTunnels, h2connect("admin.example:443"), "403", "",
       kByDeny},
      {"CONNECT without an ALLOW rule naming CONNECT", Set::kHostDeny,
       h2connect("tunnel.example:443"), "403", "", kTunnelNotNamed},
      {"CONNECT allowed by a rule naming CONNECT and its host", Set::kTunnels,
       h2connect("Tunnel.Example.:443"), "200", "tunnel.example:443",
       "allowed by ALLOW policy demo/allow-tunnels rule 0"},
  };
  for (const H2Row& row : rows) {
    SECTION(row.name) {
      EngineAuthorizer engine(row.set);
      testing::Rig rig({}, testing::echoApp, nullptr, nullptr, engine.authorizer());
      const int32_t id = rig.client.request(row.request);
      rig.run();
      INFO("decision: " << engine.last.reason);
      const testing::H2Message& got = rig.client.messages[id];
      CHECK(got.header(":status") == row.status);
      if (row.reason.empty()) {
        CHECK(engine.calls == 0);
      } else {
        CHECK(engine.last.reason.find(row.reason) != std::string::npos);
      }
      if (row.authority.empty()) {
        CHECK(rig.app.messages.empty());
      } else {
        REQUIRE(rig.app.messages.size() == 1);
        const testing::H2Message& app = rig.app.messages.begin()->second;
        CHECK(app.header(":authority") == row.authority);
        CHECK(app.header(":method") == row.request.front().second);
        bool host_field = false;
        for (const auto& [n, v] : app.headers) {
          host_field |= n == "host";
        }
        CHECK_FALSE(host_field);  // one authority reaches the app: :authority
      }
      CHECK_FALSE(rig.closed);  // a malformed or denied stream leaves the connection up
    }
  }
}

}  // namespace
}  // namespace ferry::http
