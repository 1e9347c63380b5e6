// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "suite/procfs.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>

#include "status_testing.h"

namespace ferry::bench {
namespace {

TEST_CASE("cpuTicksFromStat reads utime and stime after the last parenthesis", "[bench]") {
  // A command name with a space and a ')' must not shift the fields.
  const std::string stat =
      "4242 (ferry agent) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 3 0 100 "
      "1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
  auto ticks = cpuTicksFromStat(stat);
  REQUIRE_OK(ticks);
  CHECK(ticks->user == 1234);
  CHECK(ticks->system == 56);
  CHECK(ticks->total() == 1234 + 56);
  CHECK_FALSE(cpuTicksFromStat("no parenthesis here").ok());
  CHECK_FALSE(cpuTicksFromStat("1 (x) S 1 2").ok());
}

TEST_CASE("kernelPercent is the kernel's share of the CPU time between two readings", "[bench]") {
  CHECK(kernelPercent(CpuTicks{100, 50}, CpuTicks{130, 120}) == Approx(70.0));
  CHECK(kernelPercent(CpuTicks{100, 50}, CpuTicks{200, 50}) == 0);    // all in user space
  CHECK(kernelPercent(CpuTicks{100, 50}, CpuTicks{100, 90}) == 100);  // all in the kernel
  CHECK(kernelPercent(CpuTicks{100, 50}, CpuTicks{100, 50}) == 0);    // no tick passed
}

TEST_CASE("rssKibFromStatus finds VmRSS, rssAnonKibFromStatus RssAnon", "[bench]") {
  const std::string status =
      "Name:\tferry-agent\nVmPeak:\t  90000 kB\nVmRSS:\t    8412 kB\nRssAnon:\t    2950 kB\n"
      "RssFile:\t    5462 kB\n";
  auto kib = rssKibFromStatus(status);
  REQUIRE_OK(kib);
  CHECK(*kib == 8412);
  auto anon = rssAnonKibFromStatus(status);
  REQUIRE_OK(anon);
  CHECK(*anon == 2950);
  CHECK_FALSE(rssKibFromStatus("Name:\tkthreadd\n").ok());  // kernel threads have none
  CHECK_FALSE(rssAnonKibFromStatus("Name:\tkthreadd\n").ok());
}

TEST_CASE("rssKibByMappingFromSmaps sums Rss per file, largest first", "[bench]") {
  const std::string smaps =
      "55d0c0000000-55d0c0100000 r--p 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libcrypto.so.3\n"
      "Size:               1024 kB\nRss:                 600 kB\nPss:                 100 kB\n"
      "55d0c0100000-55d0c0200000 r-xp 00100000 08:01 123 /usr/lib/x86_64-linux-gnu/libcrypto.so.3\n"
      "Rss:                 300 kB\n"
      "7f0000000000-7f0000100000 rw-p 00000000 00:00 0 \n"
      "Rss:                  40 kB\n"
      "7f0000100000-7f0000200000 rw-p 00000000 00:00 0 [heap]\n"
      "Rss:                 250 kB\n"
      "7f0000200000-7f0000300000 r-xp 00000000 08:01 77 /opt/ferry-agent\n"
      "Rss:                 500 kB\nVmFlags: rd ex mr mw me sd\n";
  auto by = rssKibByMappingFromSmaps(smaps);
  REQUIRE_OK(by);
  const std::vector<std::pair<std::string, long long>> expected = {
      {"libcrypto.so.3", 900}, {"ferry-agent", 500}, {"[heap]", 250}, {"[anon]", 40}};
  CHECK(*by == expected);
  CHECK_FALSE(rssKibByMappingFromSmaps("Name:\tferry-agent\n").ok());
}

TEST_CASE("iperfBitsPerSecond reads the receiver's sum and reports iperf3 errors", "[bench]") {
  auto bps = iperfBitsPerSecond(R"({"start":{},"end":{"sum_sent":{"bits_per_second":2e9},)"
                                R"("sum_received":{"bits_per_second":1.5e9}}})");
  REQUIRE_OK(bps);
  CHECK(*bps == 1.5e9);
  auto err = iperfBitsPerSecond(R"({"start":{},"end":{},"error":"unable to connect"})");
  REQUIRE_FALSE(err.ok());
  CHECK(err.status().message().find("unable to connect") != std::string::npos);
  CHECK_FALSE(iperfBitsPerSecond("Connecting to host").ok());
  CHECK_FALSE(iperfBitsPerSecond(R"({"end":{}})").ok());
}

TEST_CASE("machineTicksFromStat counts every state but idle and iowait as busy", "[bench]") {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const std::string stat =
      "cpu  100 5 40 800 20 3 7 25 9 1\ncpu0 50 2 20 400 10 1 3 12 4 0\nintr 123\n";
  auto t = machineTicksFromStat(stat);
  REQUIRE_OK(t);
  CHECK(t->busy == 100 + 5 + 40 + 3 + 7 + 25);
  CHECK(t->total == 100 + 5 + 40 + 800 + 20 + 3 + 7 + 25);
  CHECK(busyPercent({10, 100}, {40, 200}) == 30.0);
  CHECK(busyPercent({10, 100}, {10, 100}) == 0.0);                   // no tick passed
  CHECK_FALSE(machineTicksFromStat("cpu0 1 2 3 4 5 6 7 8\n").ok());  // a core's line, not the sum
  CHECK_FALSE(machineTicksFromStat("cpu  1 2 3\n").ok());
  CHECK_FALSE(machineTicksFromStat("cpu  1 2 3 x 5 6 7 8\n").ok());
}

TEST_CASE("busiestThreadPercent is the thread that used the most ticks, of one core", "[bench]") {
  const long long hz = ::sysconf(_SC_CLK_TCK);
  // Over 2 seconds: thread 11 used a whole core, 12 a quarter, 13 (new since the first reading)
  // half of one.
  const std::map<pid_t, long long> before = {{11, 1000}, {12, 50}};
  const std::map<pid_t, long long> after = {{11, 1000 + 2 * hz}, {12, 50 + hz / 2}, {13, hz}};
  CHECK(busiestThreadPercent(before, after, 2.0) == 100.0);
  const std::map<pid_t, long long> quieter = {{11, 1000 + hz / 2}, {12, 50}, {13, hz}};
  CHECK(busiestThreadPercent(before, quieter, 2.0) == 50.0);
  CHECK(busiestThreadPercent(before, after, 0) == 0.0);
}

TEST_CASE("the live readers work on this process", "[bench]") {
  auto rss = rssBytes(::getpid());
  REQUIRE_OK(rss);
  CHECK(*rss > 0);
  auto anon = rssAnonBytes(::getpid());
  REQUIRE_OK(anon);
  CHECK(*anon > 0);
  CHECK(*anon <= *rss);
  auto machine = machineTicks();
  REQUIRE_OK(machine);
  CHECK(machine->busy > 0);
  CHECK(machine->busy < machine->total);
  auto threads = threadTicks({::getpid()});
  REQUIRE_OK(threads);
  CHECK(threads->count(static_cast<pid_t>(::gettid())) == 1);
  CHECK_FALSE(threadTicks({-1}).ok());
  auto by_mapping = rssKibByMapping(::getpid());
  REQUIRE_OK(by_mapping);
  long long total_kib = 0;
  for (const auto& [name, kib] : *by_mapping) {
    total_kib += kib;
  }
  CHECK(total_kib > 0);
  auto cpu = cpuSeconds({::getpid()});
  REQUIRE_OK(cpu);
  CHECK(*cpu >= 0);
  // Two readings, each of this process twice: each part only grows, and the seconds agree.
  auto first = cpuTicks({::getpid(), ::getpid()});
  REQUIRE_OK(first);
  auto second = cpuTicks({::getpid(), ::getpid()});
  REQUIRE_OK(second);
  CHECK(second->user >= first->user);
  CHECK(second->system >= first->system);
  CHECK(cpuSecondsBetween(CpuTicks{}, *second) >= 2 * *cpu);
  CHECK_FALSE(cpuTicks({0x7ffffff0}).ok());
  CHECK_FALSE(cpuSeconds({0x7ffffff0}).ok());  // no such pid
  CHECK_FALSE(machineDescription().empty());
}

}  // namespace
}  // namespace ferry::bench
