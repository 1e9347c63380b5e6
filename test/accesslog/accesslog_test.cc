// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "accesslog/accesslog.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <limits>
#include <thread>

#include "nlohmann/json.hpp"
#include "status_testing.h"

namespace ferry::accesslog {
namespace {

using nlohmann::json;

Entry requestEntry() {
  return Entry{
      .timestamp = absl::FromUnixMillis(1700000000123),
      .kind = Kind::kRequest,
      .reporter = Reporter::kDestination,
      .source = {.workload = "sleep",
                 .ns = "demo",
                 .principal = "spiffe://cluster.local/ns/demo/sa/sleep",
                 .address = "10.244.1.11:41234"},
      .destination = {.workload = "httpbin",
                      .ns = "demo",
                      .principal = "spiffe://cluster.local/ns/demo/sa/httpbin",
                      .address = "10.244.2.10:8080"},
      .destination_service = "httpbin.demo.svc.cluster.local",
      .bytes_sent = 512,
      .bytes_received = 128,
      .duration = absl::Milliseconds(37),
      .response_code = 403,
      .policy_decision = PolicyDecision::kDeny,
      .policy_name = "demo/deny-admin",
      .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
      .span_id = "00f067aa0ba902b7",
      .policy_rule = 12,
      .response_flags = "RBAC",
  };
}

TEST_CASE("accesslog: a request entry has every field", "[accesslog]") {
  const std::string line = toJson(requestEntry());
  CHECK(line.find('\n') == std::string::npos);
  const json j = json::parse(line);
  CHECK(j["timestamp"] == "2023-11-14T22:13:20.123Z");
  CHECK(j["kind"] == "request");
  CHECK(j["reporter"] == "destination");
  CHECK(j["source"]["workload"] == "sleep");
  CHECK(j["source"]["namespace"] == "demo");
  CHECK(j["source"]["principal"] == "spiffe://cluster.local/ns/demo/sa/sleep");
  CHECK(j["source"]["address"] == "10.244.1.11:41234");
  CHECK(j["destination"]["workload"] == "httpbin");
  CHECK(j["destination"]["namespace"] == "demo");
  CHECK(j["destination"]["principal"] == "spiffe://cluster.local/ns/demo/sa/httpbin");
  CHECK(j["destination"]["address"] == "10.244.2.10:8080");
  CHECK(j["destination_service"] == "httpbin.demo.svc.cluster.local");
  CHECK(j["bytes_sent"] == 512);
  CHECK(j["bytes_received"] == 128);
  CHECK(j["duration_ms"] == 37);
  CHECK(j["response_code"] == 403);
  CHECK(j["policy_decision"] == "deny");
  CHECK(j["policy_name"] == "demo/deny-admin");
  CHECK(j["policy_rule"] == "12");  // a string, as Istio names rules
  CHECK(j["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(j["span_id"] == "00f067aa0ba902b7");
  CHECK(j["response_flags"] == "RBAC");
  CHECK(j.size() == 20);
}

TEST_CASE("accesslog: a connection entry has the same shape with nulls", "[accesslog]") {
  Entry e{.timestamp = absl::FromUnixSeconds(0),
          .kind = Kind::kConnection,
          .reporter = Reporter::kSource,
          .source = {.workload = "sleep", .ns = "demo", .address = "10.244.1.11:41234"},
          .bytes_sent = std::numeric_limits<uint64_t>::max(),
          .policy_decision = PolicyDecision::kAllow};
  const json j = json::parse(toJson(e));
  CHECK(j["kind"] == "connection");
  CHECK(j["reporter"] == "source");
  CHECK(j["timestamp"] == "1970-01-01T00:00:00.000Z");
  CHECK(j["source"]["principal"].is_null());
  CHECK(j["destination"]["workload"].is_null());
  CHECK(j["destination_service"].is_null());
  CHECK(j["response_code"].is_null());
  CHECK(j["policy_decision"] == "allow");
  CHECK(j["policy_name"].is_null());
  CHECK(j["policy_rule"].is_null());
  CHECK(j["trace_id"].is_null());
  CHECK(j["bytes_sent"].get<uint64_t>() == std::numeric_limits<uint64_t>::max());
  CHECK(j["duration_ms"] == 0);
  CHECK(j.size() == 20);
}

TEST_CASE("accesslog: hostile values stay inside their field on one line", "[accesslog]") {
  struct Row {
    std::string description, value;
  };
  const std::vector<Row> rows = {
      {"quotes", R"(evil"name","kind":"forged)"},
      {"newlines", "evil\nname\r\n{\"kind\":\"connection\"}"},
      {"backslashes and controls", std::string("a\\b\t\x01\x1f", 7)},
      {"NUL byte", std::string("a\0b", 3)},
      {"unicode", "名前-🚀"},
  };
  for (const auto& row : rows) {
    INFO(row.description);
    Entry e = requestEntry();
    e.source.workload = row.value;
    e.response_flags = row.value;
    const std::string line = toJson(e);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find('\r') == std::string::npos);
    const json j = json::parse(line);
    CHECK(j["source"]["workload"] == row.value);
    CHECK(j["response_flags"] == row.value);
    CHECK(j["kind"] == "request");
    CHECK(j.size() == 20);
  }
}

TEST_CASE("accesslog: invalid UTF-8 is replaced, never thrown", "[accesslog]") {
  Entry e = requestEntry();
  const std::string workload("bad\xff\xfe", 5);
  e.destination.workload = workload;
  std::string line;
  REQUIRE_NOTHROW(line = toJson(e));
  const json j = json::parse(line);
  CHECK(j["destination"]["workload"] == "bad\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("accesslog: lines are byte for byte what nlohmann::json writes for them", "[accesslog]") {
  // toJson() writes the line by hand; the line must stay the one the JSON library (which it
  // replaced) writes: keys in byte order, its escapes, U+FFFD for bytes that are not UTF-8.
  struct Row {
    std::string description, value;
  };
  const std::vector<Row> rows = {
      {"plain", "sleep"},
      {"empty (null)", ""},
      {"quotes and backslashes", R"(a"b\c)"},
      {"runs between escapes", "GET /a?b=\"c\"&d\\e\n\tf\x01g/h"},
      {"every control byte",
       [] {
         std::string s;
         for (char c = 1; c < 0x20; ++c) {
           s += c;
         }
         return s + '\x7f' + std::string("\0", 1);
       }()},
      {"unicode", "名前-🚀"},
      {"not UTF-8", std::string("bad\xff\xfe\xc3", 6)},
  };
  for (const auto& row : rows) {
    INFO(row.description);
    Entry e = requestEntry();
    e.source.workload = row.value;
    e.destination.ns = row.value;
    e.path = row.value;
    e.method = row.value;
    e.parent_span_id = row.value;
    const std::string line = toJson(e);
    CHECK(line == json::parse(line).dump(-1, ' ', false, json::error_handler_t::replace));
  }
  Entry conn{.timestamp = absl::FromUnixSeconds(0)};
  const std::string line = toJson(conn);
  CHECK(line == json::parse(line).dump());
  CHECK(line.starts_with(R"({"authority":null,"bytes_received":0,"bytes_sent":0,)"));
}

TEST_CASE("accesslog: timestamps are absl's %E3S UTC text at every millisecond and second",
          "[accesslog]") {
  // toJson() formats the seconds once per second and appends the milliseconds itself: across
  // second, day and year changes, repeated seconds and times out of its range, the text must be
  // the one absl::FormatTime writes.
  std::vector<absl::Time> times;
  for (int64_t ms : {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{1000}, int64_t{1700000000123},
                     int64_t{1700000000999}, int64_t{1700000001000}, int64_t{1700000001001},
                     int64_t{1798761599999}, int64_t{1798761600000}, int64_t{253402300799000}}) {
    times.push_back(absl::FromUnixMillis(ms));
  }
  for (int64_t ms = 1764979200000 - 2500; ms < 1764979200000 + 2500; ms += 7) {
    times.push_back(absl::FromUnixMillis(ms));  // 2025-12-06T00:00:00Z, back and forth
  }
  times.push_back(absl::FromUnixMillis(1700000000123));       // a second seen before, again
  times.push_back(absl::FromUnixNanos(1700000000123999999));  // rounds down
  times.push_back(absl::FromUnixMillis(-1));                  // before the epoch
  times.push_back(absl::FromUnixSeconds(253402300800));       // year 10000
  times.push_back(absl::InfiniteFuture());
  for (absl::Time t : times) {
    const std::string want = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
    INFO(want);
    Entry e = requestEntry();
    e.timestamp = t;
    CHECK(json::parse(toJson(e))["timestamp"] == want);
  }
}

TEST_CASE("accesslog: the logger writes each entry to the sink", "[accesslog]") {
  auto sink = std::make_shared<MemorySink>();
  auto logger = Logger::create(Config{}, sink);
  REQUIRE_OK(logger);
  // A long line first: the next, shorter one is written whole and alone (the thread's buffer is
  // reused, so nothing of the first may be left in it).
  Entry request = requestEntry();
  const std::string long_path = "/" + std::string(5000, 'p');
  request.path = long_path;
  CHECK((*logger)->log(request));
  Entry conn = requestEntry();
  conn.kind = Kind::kConnection;
  CHECK((*logger)->log(conn));
  const auto lines = sink->lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == toJson(request));
  CHECK(json::parse(lines[0])["kind"] == "request");
  CHECK(lines[1] == toJson(conn));
  CHECK(json::parse(lines[1])["kind"] == "connection");
  CHECK((*logger)->written() == 2);
  CHECK((*logger)->sampledOut() == 0);
}

TEST_CASE("accesslog: off by config writes nothing", "[accesslog]") {
  auto sink = std::make_shared<MemorySink>();
  auto logger = Logger::create(Config{.enabled = false}, sink);
  REQUIRE_OK(logger);
  for (int i = 0; i < 10; ++i) {
    CHECK_FALSE((*logger)->log(requestEntry()));
  }
  CHECK(sink->lines().empty());
  CHECK((*logger)->written() == 0);
}

std::vector<bool> decisions(double rate, uint64_t seed, int n, MemorySink& sink) {
  auto sink_ptr = std::shared_ptr<Sink>(&sink, [](Sink*) {});
  auto logger = Logger::create(Config{.sample_rate = rate, .seed = seed}, sink_ptr);
  REQUIRE(logger.ok());
  std::vector<bool> out;
  for (int i = 0; i < n; ++i) {
    out.push_back((*logger)->log(requestEntry()));
  }
  CHECK((*logger)->written() + (*logger)->sampledOut() == static_cast<uint64_t>(n));
  return out;
}

TEST_CASE("accesslog: sampling keeps about the configured share, deterministically",
          "[accesslog]") {
  constexpr int kN = 4000;
  MemorySink none, all, quarter, quarter_again, other_seed;
  auto zero = decisions(0.0, 1, kN, none);
  auto one = decisions(1.0, 1, kN, all);
  CHECK(std::count(zero.begin(), zero.end(), true) == 0);
  CHECK(none.lines().empty());
  CHECK(std::count(one.begin(), one.end(), true) == kN);
  CHECK(all.lines().size() == kN);

  auto a = decisions(0.25, 1, kN, quarter);
  auto b = decisions(0.25, 1, kN, quarter_again);
  auto c = decisions(0.25, 2, kN, other_seed);
  const auto kept = std::count(a.begin(), a.end(), true);
  // 1000 expected; the standard deviation is ~27, and the seed makes this exact run fixed.
  CHECK(kept > 850);
  CHECK(kept < 1150);
  CHECK(quarter.lines().size() == static_cast<size_t>(kept));
  CHECK(a == b);  // same seed, same decisions
  CHECK(a != c);  // another seed, other decisions
}

TEST_CASE("accesslog: invalid sample rates are refused", "[accesslog]") {
  for (double rate : {-0.01, 1.01, std::nan(""), std::numeric_limits<double>::infinity()}) {
    INFO(rate);
    auto logger = Logger::create(Config{.sample_rate = rate}, std::make_shared<MemorySink>());
    REQUIRE_FALSE(logger.ok());
    CHECK_THAT(std::string(logger.status().message()), Catch::Contains("sample_rate"));
  }
}

TEST_CASE("accesslog: the file sink writes one line per entry", "[accesslog]") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  auto logger = Logger::create(Config{}, std::make_shared<FileSink>(file));
  REQUIRE_OK(logger);
  Entry e = requestEntry();
  e.source.workload = "line\nbreak";
  (*logger)->log(e);
  (*logger)->log(requestEntry());
  std::rewind(file);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, file)) > 0) {
    text.append(buf, n);
  }
  std::fclose(file);
  REQUIRE(std::count(text.begin(), text.end(), '\n') == 2);
  const auto first = text.substr(0, text.find('\n'));
  CHECK(json::parse(first)["source"]["workload"] == "line\nbreak");
}

// Bytes waiting in a pipe's read end.
int pipeBytes(int fd) {
  int n = -1;
  REQUIRE(::ioctl(fd, FIONREAD, &n) == 0);
  return n;
}

TEST_CASE("accesslog: a thread that defers flushes writes its lines at flushDeferred()",
          "[accesslog]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::FILE* file = ::fdopen(fds[1], "w");
  REQUIRE(file != nullptr);
  auto sink = std::make_shared<FileSink>(file);
  const std::string line = toJson(requestEntry());
  int deferred_before = -1, deferred_after = -1, at_once = -1;
  std::thread worker([&] {
    FileSink::deferFlushes();
    sink->write(line);
    sink->write(line);
    deferred_before = pipeBytes(fds[0]);
    FileSink::flushDeferred();
    deferred_after = pipeBytes(fds[0]);
    FileSink::flushDeferred();  // nothing waits: no second write
  });
  worker.join();
  CHECK(deferred_before == 0);
  CHECK(deferred_after == static_cast<int>(2 * (line.size() + 1)));
  std::string got(2 * (line.size() + 1), '\0');
  REQUIRE(::read(fds[0], got.data(), got.size()) == static_cast<ssize_t>(got.size()));
  CHECK(got == line + "\n" + line + "\n");
  std::thread other([&] {  // has not deferred: each line goes out as it is written
    sink->write(line);
    at_once = pipeBytes(fds[0]);
  });
  other.join();
  CHECK(at_once == static_cast<int>(line.size() + 1));
  std::fclose(file);
  ::close(fds[0]);
}

}  // namespace
}  // namespace ferry::accesslog
