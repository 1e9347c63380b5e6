// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "suite/procfs.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "process/smaps.h"

namespace ferry::bench {
namespace {

absl::StatusOr<std::string> readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError("cannot read " + path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<CpuTicks> cpuTicksFromStat(const std::string& stat) {
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) {
    return absl::InvalidArgumentError("not a /proc/<pid>/stat line");
  }
  // After ')': state(3) ppid(4) ... utime(14) stime(15), so utime is the 12th field here.
  std::vector<std::string> f = absl::StrSplit(stat.substr(paren + 1), ' ', absl::SkipEmpty());
  CpuTicks t;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &t.user) || !absl::SimpleAtoi(f[12], &t.system)) {
    return absl::InvalidArgumentError("short /proc/<pid>/stat line");
  }
  return t;
}

namespace {
absl::StatusOr<long long> statusKib(const std::string& status, absl::string_view field) {
  const std::string prefix = absl::StrCat(field, ":");
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, prefix)) {
      line = absl::StripSuffix(absl::StripAsciiWhitespace(line), "kB");
      long long kib = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib)) {
        return kib;
      }
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("no ", field, " line"));
}

absl::StatusOr<long long> statusBytes(pid_t pid, absl::string_view field) {
  auto text = readFile(absl::StrCat("/proc/", pid, "/status"));
  if (!text.ok()) {
    return text.status();
  }
  auto kib = statusKib(*text, field);
  if (!kib.ok()) {
    return kib.status();
  }
  return *kib * 1024;
}
}  // namespace

absl::StatusOr<long long> rssKibFromStatus(const std::string& status) {
  return statusKib(status, "VmRSS");
}

absl::StatusOr<long long> rssAnonKibFromStatus(const std::string& status) {
  return statusKib(status, "RssAnon");
}

absl::StatusOr<std::vector<std::pair<std::string, long long>>> rssKibByMappingFromSmaps(
    const std::string& smaps) {
  auto mappings = process::parseSmaps(smaps);
  if (!mappings.ok()) {
    return mappings.status();
  }
  std::map<std::string, long long> kib;
  for (const process::SmapsMapping& m : *mappings) {
    // A file by its base name; the kernel's own names ("[heap]", "[stack]") as they are.
    const std::string name = m.path.empty() ? "[anon]" : m.path.substr(m.path.rfind('/') + 1);
    kib[name] += static_cast<long long>(m.rss_kib);
  }
  std::vector<std::pair<std::string, long long>> out(kib.begin(), kib.end());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

absl::StatusOr<MachineTicks> machineTicksFromStat(const std::string& stat) {
  absl::string_view line = absl::string_view(stat).substr(0, stat.find('\n'));
  if (!absl::ConsumePrefix(&line, "cpu ")) {
    return absl::InvalidArgumentError("not /proc/stat text: no \"cpu\" line first");
  }
  // user nice system idle iowait irq softirq steal [guest guest_nice]
  std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (f.size() < 8) {
    return absl::InvalidArgumentError("short \"cpu\" line in /proc/stat");
  }
  MachineTicks t;
  for (size_t i = 0; i < 8; ++i) {
    long long v = 0;
    if (!absl::SimpleAtoi(f[i], &v) || v < 0) {
      return absl::InvalidArgumentError("not a number in the \"cpu\" line of /proc/stat");
    }
    t.total += v;
    if (i != 3 && i != 4) {
      t.busy += v;
    }
  }
  return t;
}

absl::StatusOr<double> iperfBitsPerSecond(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError("iperf3 output is not JSON");
  }
  if (j.contains("error")) {
    return absl::UnavailableError("iperf3: " + j["error"].get<std::string>());
  }
  const auto& bps = j["end"]["sum_received"]["bits_per_second"];
  if (!bps.is_number()) {
    return absl::InvalidArgumentError("iperf3 JSON without end.sum_received.bits_per_second");
  }
  return bps.get<double>();
}

absl::StatusOr<CpuTicks> cpuTicks(const std::vector<pid_t>& pids) {
  CpuTicks sum;
  for (pid_t pid : pids) {
    auto text = readFile(absl::StrCat("/proc/", pid, "/stat"));
    if (!text.ok()) {
      return text.status();
    }
    auto t = cpuTicksFromStat(*text);
    if (!t.ok()) {
      return t.status();
    }
    sum.user += t->user;
    sum.system += t->system;
  }
  return sum;
}

absl::StatusOr<double> cpuSeconds(const std::vector<pid_t>& pids) {
  auto ticks = cpuTicks(pids);
  if (!ticks.ok()) {
    return ticks.status();
  }
  return cpuSecondsBetween(CpuTicks{}, *ticks);
}

double cpuSecondsBetween(const CpuTicks& before, const CpuTicks& after) {
  return static_cast<double>(after.total() - before.total()) /
         static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double kernelPercent(const CpuTicks& before, const CpuTicks& after) {
  const long long total = after.total() - before.total();
  if (total <= 0) {
    return 0;
  }
  return 100.0 * static_cast<double>(after.system - before.system) / static_cast<double>(total);
}

absl::StatusOr<MachineTicks> machineTicks() {
  auto text = readFile("/proc/stat");
  if (!text.ok()) {
    return text.status();
  }
  return machineTicksFromStat(*text);
}

absl::StatusOr<std::map<pid_t, long long>> threadTicks(const std::vector<pid_t>& pids) {
  std::map<pid_t, long long> out;
  for (pid_t pid : pids) {
    std::error_code ec;
    const std::string dir = absl::StrCat("/proc/", pid, "/task");
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      pid_t tid = 0;
      if (!absl::SimpleAtoi(entry.path().filename().string(), &tid)) {
        continue;
      }
      auto text = readFile(entry.path().string() + "/stat");
      if (!text.ok()) {
        continue;  // the thread ended between the listing and the read
      }
      auto ticks = cpuTicksFromStat(*text);
      if (!ticks.ok()) {
        return ticks.status();
      }
      out[tid] = ticks->total();
    }
    if (ec) {
      return absl::NotFoundError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
    }
  }
  return out;
}

double busiestThreadPercent(const std::map<pid_t, long long>& before,
                            const std::map<pid_t, long long>& after, double seconds) {
  if (seconds <= 0) {
    return 0;
  }
  long long most = 0;
  for (const auto& [tid, ticks] : after) {
    auto it = before.find(tid);
    most = std::max(most, ticks - (it == before.end() ? 0 : it->second));
  }
  return 100.0 * static_cast<double>(most) /
         (seconds * static_cast<double>(::sysconf(_SC_CLK_TCK)));
}

double busyPercent(const MachineTicks& before, const MachineTicks& after) {
  const long long total = after.total - before.total;
  return total > 0 ? 100.0 * static_cast<double>(after.busy - before.busy) / total : 0;
}

absl::StatusOr<long long> rssBytes(pid_t pid) {
  return statusBytes(pid, "VmRSS");
}

absl::StatusOr<long long> rssAnonBytes(pid_t pid) {
  return statusBytes(pid, "RssAnon");
}

absl::StatusOr<std::vector<std::pair<std::string, long long>>> rssKibByMapping(pid_t pid) {
  auto smaps = readFile(absl::StrCat("/proc/", pid, "/smaps"));
  if (!smaps.ok()) {
    return smaps.status();
  }
  return rssKibByMappingFromSmaps(*smaps);
}

std::string machineDescription() {
  std::string model = "unknown CPU";
  if (auto cpu = readFile("/proc/cpuinfo"); cpu.ok()) {
    for (absl::string_view line : absl::StrSplit(*cpu, '\n')) {
      if (absl::ConsumePrefix(&line, "model name")) {
        model = std::string(
            absl::StripAsciiWhitespace(absl::StripPrefix(absl::StripAsciiWhitespace(line), ":")));
        break;
      }
    }
  }
  utsname u{};
  ::uname(&u);
  long long mem_kib = 0;
  if (auto mi = readFile("/proc/meminfo"); mi.ok()) {
    std::istringstream in(*mi);
    std::string key;
    in >> key >> mem_kib;
  }
  return absl::StrCat(model, ", ", std::thread::hardware_concurrency(), " cores, ",
                      mem_kib / 1024 / 1024, " GiB, Linux ", u.release);
}

std::string loadAverage() {
  auto text = readFile("/proc/loadavg");
  if (!text.ok()) {
    return "unknown";
  }
  std::vector<std::string> f = absl::StrSplit(*text, ' ');
  return f.size() >= 3 ? absl::StrCat(f[0], " ", f[1], " ", f[2]) : "unknown";
}

}  // namespace ferry::bench
