// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "enroll/protocol.h"

#include <catch2/catch.hpp>

namespace ferry::enroll {
namespace {

PodInfo samplePod() {
  return PodInfo{"uid-1",
                 "n1p1",
                 "default",
                 "sa1",
                 "/run/netns/ferry-x-n1p1",
                 {"10.244.1.11", "fd00:244::1:11"}};
}

TEST_CASE("requests and replies round-trip", "[enroll]") {
  Request add{Op::kAdd, samplePod(), "uid-1"};
  auto decoded = decodeRequest(encodeRequest(add));
  REQUIRE(decoded.ok());
  CHECK(*decoded == add);

  for (Op op : {Op::kDel, Op::kCheck}) {
    Request r{op, {}, "uid-9"};
    auto d = decodeRequest(encodeRequest(r));
    REQUIRE(d.ok());
    CHECK(*d == r);
  }
  for (const Reply& reply : {Reply::success(), Reply::failure("netns gone")}) {
    auto d = decodeReply(encodeReply(reply));
    REQUIRE(d.ok());
    CHECK(*d == reply);
  }
}

TEST_CASE("the documented wire form decodes", "[enroll]") {
  auto r = decodeRequest(
      R"({"op":"add","pod":{"uid":"u","name":"p","namespace":"ns","service_account":"sa",)"
      R"("netns":"/run/netns/x","ips":["10.0.0.1","FD00:0:0::1"]}})");
  REQUIRE(r.ok());
  CHECK(r->op == Op::kAdd);
  CHECK(r->uid == "u");
  CHECK(r->pod.ns == "ns");
  // IPv6 comes back in canonical form so the agent can compare addresses as strings.
  CHECK(r->pod.ips == std::vector<std::string>{"10.0.0.1", "fd00::1"});
  CHECK(encodeReply(Reply::success()) == R"({"ok":true})");
  CHECK(encodeReply(Reply::failure("x")) == R"({"error":"x","ok":false})");
}

TEST_CASE("optional pod fields may be omitted", "[enroll]") {
  auto r = decodeRequest(R"({"op":"add","pod":{"uid":"u","name":"p","namespace":"ns",)"
                         R"("netns":"/proc/1/ns/net"}})");
  REQUIRE(r.ok());
  CHECK(r->pod.service_account.empty());
  CHECK(r->pod.ips.empty());
}

TEST_CASE("hostile requests are refused with a reason naming the fault", "[enroll]") {
  struct Row {
    const char* description;
    std::string line;
    const char* reason;
  };
  const std::string pod_ok = R"("uid":"u","name":"p","namespace":"ns","netns":"/run/netns/x")";
  std::vector<Row> rows = {
      {"not json", "{op:add", "not valid JSON"},
      {"array", "[1,2]", "must be a JSON object"},
      {"no op", R"({"uid":"u"})", "missing field \"op\""},
      {"op not a string", R"({"op":1})", "must be a string"},
      {"unknown op", R"({"op":"nuke","uid":"u"})", "unknown op \"nuke\""},
      {"add without pod", R"({"op":"add"})", "missing field \"pod\""},
      {"pod not an object", R"({"op":"add","pod":"x"})", "must be a JSON object"},
      {"unknown top field", R"({"op":"del","uid":"u","force":true})", "unknown field \"force\""},
      {"unknown pod field", "{\"op\":\"add\",\"pod\":{" + pod_ok + ",\"netNs\":\"/x\"}}",
       "unknown field \"netNs\""},
      {"missing uid", R"({"op":"add","pod":{"name":"p","namespace":"ns","netns":"/x"}})",
       "missing field \"uid\""},
      {"empty uid", R"({"op":"add","pod":{"uid":"","name":"p","namespace":"ns","netns":"/x"}})",
       "\"uid\" must not be empty"},
      {"relative netns",
       R"({"op":"add","pod":{"uid":"u","name":"p","namespace":"ns","netns":"net"}})",
       "absolute path"},
      {"ips not array", "{\"op\":\"add\",\"pod\":{" + pod_ok + ",\"ips\":\"10.0.0.1\"}}",
       "must be an array"},
      {"ip not string", "{\"op\":\"add\",\"pod\":{" + pod_ok + ",\"ips\":[1]}}",
       "entries must be strings"},
      {"bad ip", "{\"op\":\"add\",\"pod\":{" + pod_ok + ",\"ips\":[\"10.0.0.300\"]}}",
       "\"10.0.0.300\" is not an IPv4 or IPv6"},
      {"del empty uid", R"({"op":"del","uid":""})", "must not be empty"},
      {"check uid number", R"({"op":"check","uid":7})", "must be a string"},
      {"too long", std::string(kMaxLineBytes + 1, ' '), "over the limit"},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    auto r = decodeRequest(row.line);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(std::string(r.status().message()), Catch::Contains(row.reason));
  }
}

TEST_CASE("bad replies are refused", "[enroll]") {
  CHECK_FALSE(decodeReply(R"({"ok":"yes"})").ok());
  CHECK_FALSE(decodeReply(R"({"ok":false})").ok());  // a failure must say why
  CHECK_FALSE(decodeReply(R"({"ok":true,"extra":1})").ok());
  CHECK_FALSE(decodeReply("true").ok());
}

}  // namespace
}  // namespace ferry::enroll
