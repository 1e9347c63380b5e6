// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "harness/cluster.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "poll_until.h"

namespace ferry::harness {
namespace fs = std::filesystem;
namespace {

constexpr char kPrefix[] = "ferry";
constexpr unsigned long kBpffsMagic = 0xcafe4a11;

std::string freshId() {
  std::random_device rd;
  char buf[5];
  std::snprintf(buf, sizeof(buf), "%04x", static_cast<unsigned>(rd() & 0xffff));
  return buf;
}

bool isClusterId(std::string_view id) {
  return id.size() == 4 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string statePath(const std::string& id) {
  return absl::StrCat(kStateDir, "/", id, ".json");
}

absl::Status ensureBpffs() {
  struct statfs st {};
  if (::statfs(kBpffsRoot, &st) == 0 && static_cast<unsigned long>(st.f_type) == kBpffsMagic) {
    return absl::OkStatus();
  }
  if (::mount("bpf", kBpffsRoot, "bpf", 0, nullptr) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mount bpffs at ", kBpffsRoot));
  }
  return absl::OkStatus();
}

// `ip -batch -`: one iproute2 process for the whole topology instead of one per command.
// `netns` names the namespace the commands run in (empty: the caller's).
absl::Status ipBatch(const std::vector<std::string>& commands, const std::string& netns = "") {
  std::vector<std::string> argv = {"ip"};
  if (!netns.empty()) {
    argv.insert(argv.end(), {"-n", netns});
  }
  argv.insert(argv.end(), {"-batch", "-"});
  absl::StatusOr<ProcessResult> r =
      runProcess({}, argv, absl::Seconds(60), absl::StrJoin(commands, "\n") + "\n");
  if (!r.ok()) {
    return r.status();
  }
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("ip -batch failed: ", r->err));
  }
  return absl::OkStatus();
}

// Kills every process below a cgroup v2 directory and removes the directories, deepest first.
absl::Status removeCgroupTree(const std::string& root) {
  if (!fs::exists(root)) {
    return absl::OkStatus();
  }
  std::ofstream(root + "/cgroup.kill") << "1";
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_directory()) {
      dirs.push_back(it->path());
    }
  }
  dirs.push_back(root);
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
    return a.native().size() > b.native().size();
  });
  for (const fs::path& dir : dirs) {
    // A killed process leaves its cgroup only once it has exited: wait (bounded, 5 s) for that.
    int error = 0;
    static_cast<void>(ferry::testing::pollUntil(
        [&] {
          error = ::rmdir(dir.c_str()) == 0 ? 0 : errno;
          if (error == EBUSY) {
            std::ofstream(dir.string() + "/cgroup.kill") << "1";
          }
          return error != EBUSY;
        },
        std::chrono::seconds(5), std::chrono::milliseconds(10)));
    if (error != 0 && error != EBUSY && error != ENOENT) {
      return absl::ErrnoToStatus(error, absl::StrCat("rmdir ", dir.string()));
    }
    if (fs::exists(dir)) {
      return absl::InternalError(absl::StrCat("cgroup ", dir.string(), " stays busy"));
    }
  }
  return absl::OkStatus();
}

// When process `pid` started (clock ticks since boot, /proc/<pid>/stat field 22), or "" when
// there is no such process. With the pid it names one process, even after the pid is reused.
std::string startTimeOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t comm_end = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (comm_end == std::string::npos) {
    return "";
  }
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(comm_end + 2), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state): field 22 is fields[19].
  return fields.size() > 19 ? fields[19] : "";
}

bool ownerAlive(const std::string& id) {
  std::ifstream in(statePath(id));
  if (!in) {
    return false;
  }
  nlohmann::json state = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (state.is_discarded() || !state.contains("owner_pid")) {
    return false;
  }
  int pid = state["owner_pid"].get<int>();
  if (pid == 0) {
    return true;  // a persistent cluster from `ferry-cluster up`: only `down` removes it
  }
  if (::kill(pid, 0) != 0 && errno != EPERM) {
    return false;
  }
  // A live process with the owner's pid is the owner only if it started when the owner did.
  std::string started = state.value("owner_start", "");
  return started.empty() || started == startTimeOf(pid);
}

// The cluster id inside a prefixed name, or "" when the name does not follow the pattern.
std::string idOf(std::string_view name, size_t offset) {
  if (name.size() < offset + 4) {
    return "";
  }
  std::string id(name.substr(offset, 4));
  return isClusterId(id) ? id : "";
}

}  // namespace

std::string Leftovers::describe() const {
  std::vector<std::string> parts;
  auto add = [&](const char* what, const std::vector<std::string>& items) {
    if (!items.empty()) {
      parts.push_back(absl::StrCat(what, ": ", absl::StrJoin(items, " ")));
    }
  };
  add("netns", netns);
  add("links", links);
  add("cgroups", cgroups);
  add("pins", pins);
  add("state files", state_files);
  return parts.empty() ? "nothing" : absl::StrJoin(parts, "; ");
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::create(const ClusterSpec& spec) {
  if (spec.nodes < 1 || spec.nodes > 9 || spec.pods_per_node < 1 || spec.pods_per_node > 99) {
    return absl::InvalidArgumentError("a local cluster has 1..9 nodes of 1..99 pods each");
  }
  if (!spec.id.empty() && !isClusterId(spec.id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster id '", spec.id, "' must be 4 lowercase hex characters"));
  }
  if (::geteuid() != 0) {
    return absl::PermissionDeniedError("the local cluster needs root (namespaces, cgroups)");
  }
  std::unique_ptr<Cluster> cluster(new Cluster());
  cluster->owned_ = true;  // until built: a failed build cleans up after itself
  absl::Status status = cluster->build(spec);
  if (!status.ok()) {
    cluster->teardown().IgnoreError();
    return status;
  }
  cluster->owned_ = spec.owned;
  if (!spec.owned) {
    // Built: from now on nothing outlives it on purpose, so no process is its owner and it is
    // never stale (until then the builder was, so a build killed half-way is found as stale).
    if (absl::Status s = cluster->writeState(); !s.ok()) {
      cluster->owned_ = true;
      cluster->teardown().IgnoreError();
      return s;
    }
  }
  return cluster;
}

absl::Status Cluster::build(const ClusterSpec& spec) {
  id_ = spec.id.empty() ? freshId() : spec.id;
  if (fs::exists(statePath(id_))) {
    return absl::AlreadyExistsError(absl::StrCat("a local cluster with id ", id_, " exists"));
  }
  if (!fs::exists(kCgroupRoot)) {
    return absl::FailedPreconditionError(absl::StrCat("cgroup v2 is not mounted at ", kCgroupRoot));
  }
  if (absl::Status s = ensureBpffs(); !s.ok()) {
    return s;
  }
  std::string base = absl::StrCat(kPrefix, "-", id_);
  switch_netns_path_ = absl::StrCat("/run/netns/", base, "-sw");
  bridge_ = absl::StrCat(kPrefix, id_, "br");
  cgroup_root_ = absl::StrCat(kCgroupRoot, "/", base);
  scratch_dir_ = absl::StrCat("/tmp/", base, "-scratch");
  for (int n = 1; n <= spec.nodes; ++n) {
    Node node;
    node.index = n;
    node.name = absl::StrCat("node", n);
    node.cgroup_path = absl::StrCat(cgroup_root_, "/node", n);
    node.agent_cgroup_path = absl::StrCat(cgroup_root_, "/agent", n);
    node.bpffs_dir = absl::StrCat(kBpffsRoot, "/", base, "-node", n);
    node.pod_cidr_v4 = absl::StrCat("10.244.", n, ".0/24");
    for (int p = 1; p <= spec.pods_per_node; ++p) {
      Pod pod;
      pod.node = n;
      pod.index = p;
      pod.name = absl::StrCat("n", n, "p", p);
      pod.netns_name = absl::StrCat(base, "-", pod.name);
      pod.netns_path = absl::StrCat("/run/netns/", pod.netns_name);
      pod.cgroup_path = absl::StrCat(node.cgroup_path, "/pod", p);
      pod.ipv4 = absl::StrCat("10.244.", n, ".", 10 + p);
      pod.ipv6 = absl::StrCat("fd00:244::", n, ":", 10 + p);
      node.pods.push_back(pod);
    }
    nodes_.push_back(node);
  }
  // The state file comes first, so that even a build killed half-way is found as stale.
  if (absl::Status s = writeState(); !s.ok()) {
    return s;
  }
  std::string sw = absl::StrCat(base, "-sw");
  std::vector<std::string> host = {absl::StrCat("netns add ", sw)};
  std::vector<std::string> on_switch = {
      "link set lo up",
      absl::StrCat("link add ", bridge_, " type bridge stp_state 0"),
      absl::StrCat("link set ", bridge_, " up"),
  };
  std::vector<std::pair<std::string, std::vector<std::string>>> in_pods;
  for (const Node& node : nodes_) {
    for (const Pod& pod : node.pods) {
      std::string veth = absl::StrCat(kPrefix, id_, pod.name);
      host.push_back(absl::StrCat("netns add ", pod.netns_name));
      on_switch.push_back(
          absl::StrCat("link add ", veth, " type veth peer name eth0 netns ", pod.netns_name));
      on_switch.push_back(absl::StrCat("link set ", veth, " master ", bridge_, " up"));
      in_pods.push_back(
          {pod.netns_name,
           {"link set lo up", absl::StrCat("addr add ", pod.ipv4, "/16 dev eth0"),
            absl::StrCat("addr add ", pod.ipv6, "/64 dev eth0 nodad"), "link set eth0 up"}});
    }
  }
  if (absl::Status s = ipBatch(host); !s.ok()) {
    return s;
  }
  if (absl::Status s = ipBatch(on_switch, sw); !s.ok()) {
    return s;
  }
  for (const auto& [ns, cmds] : in_pods) {
    if (absl::Status s = ipBatch(cmds, ns); !s.ok()) {
      return s;
    }
  }
  std::error_code ec;
  fs::create_directories(scratch_dir_, ec);
  for (const Node& node : nodes_) {
    for (const std::string& dir : {node.agent_cgroup_path, node.bpffs_dir}) {
      if (!fs::create_directories(dir, ec) && ec) {
        return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", ec.message()));
      }
    }
    for (const Pod& pod : node.pods) {
      if (!fs::create_directories(pod.cgroup_path, ec) && ec) {
        return absl::InternalError(absl::StrCat("mkdir ", pod.cgroup_path, ": ", ec.message()));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Cluster::writeState() const {
  std::error_code ec;
  fs::create_directories(kStateDir, ec);
  nlohmann::json state;
  state["id"] = id_;
  state["owner_pid"] = owned_ ? static_cast<int>(::getpid()) : 0;
  if (owned_) {
    state["owner_start"] = startTimeOf(::getpid());
  }
  state["nodes"] = nodes_.size();
  state["pods_per_node"] = nodes_.empty() ? 0 : nodes_.front().pods.size();
  std::ofstream out(statePath(id_));
  out << state.dump(2) << "\n";
  if (!out) {
    return absl::InternalError(absl::StrCat("cannot write ", statePath(id_)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::open(const std::string& id) {
  std::ifstream in(statePath(id));
  if (!in) {
    return absl::NotFoundError(absl::StrCat("no local cluster with id '", id, "'"));
  }
  nlohmann::json state = nlohmann::json::parse(in, nullptr, false);
  if (state.is_discarded()) {
    return absl::DataLossError(absl::StrCat(statePath(id), " is not valid JSON"));
  }
  // Rebuild the same names the creator derived; nothing on the system is changed.
  std::unique_ptr<Cluster> cluster(new Cluster());
  ClusterSpec spec{state.value("nodes", 0), state.value("pods_per_node", 0), id};
  cluster->id_ = id;
  std::string base = absl::StrCat(kPrefix, "-", id);
  cluster->switch_netns_path_ = absl::StrCat("/run/netns/", base, "-sw");
  cluster->bridge_ = absl::StrCat(kPrefix, id, "br");
  cluster->cgroup_root_ = absl::StrCat(kCgroupRoot, "/", base);
  cluster->scratch_dir_ = absl::StrCat("/tmp/", base, "-scratch");
  for (int n = 1; n <= spec.nodes; ++n) {
    Node node{n,
              absl::StrCat("node", n),
              absl::StrCat(cluster->cgroup_root_, "/node", n),
              absl::StrCat(cluster->cgroup_root_, "/agent", n),
              absl::StrCat(kBpffsRoot, "/", base, "-node", n),
              absl::StrCat("10.244.", n, ".0/24"),
              {}};
    for (int p = 1; p <= spec.pods_per_node; ++p) {
      std::string name = absl::StrCat("n", n, "p", p);
      node.pods.push_back(Pod{
          n, p, name, absl::StrCat(base, "-", name), absl::StrCat("/run/netns/", base, "-", name),
          absl::StrCat(node.cgroup_path, "/pod", p), absl::StrCat("10.244.", n, ".", 10 + p),
          absl::StrCat("fd00:244::", n, ":", 10 + p)});
    }
    cluster->nodes_.push_back(std::move(node));
  }
  return cluster;
}

Cluster::~Cluster() {
  if (owned_) {
    teardown().IgnoreError();
  }
}

absl::Status Cluster::teardown() {
  if (torn_down_ || id_.empty()) {
    return absl::OkStatus();
  }
  std::vector<std::string> errors;
  // Processes first: they may hold sockets in the namespaces and pins in bpffs.
  if (absl::Status s = removeCgroupTree(cgroup_root_); !s.ok()) {
    errors.push_back(std::string(s.message()));
  }
  std::vector<std::string> cmds;
  for (const Node& node : nodes_) {
    for (const Pod& pod : node.pods) {
      if (fs::exists(pod.netns_path)) {
        cmds.push_back(absl::StrCat("netns del ", pod.netns_name));
      }
    }
    std::error_code ec;
    fs::remove_all(node.bpffs_dir, ec);
    if (ec) {
      errors.push_back(absl::StrCat("remove ", node.bpffs_dir, ": ", ec.message()));
    }
  }
  if (fs::exists(switch_netns_path_)) {
    cmds.push_back(absl::StrCat("netns del ", fs::path(switch_netns_path_).filename().string()));
  }
  if (!cmds.empty()) {
    if (absl::Status s = ipBatch(cmds); !s.ok()) {
      errors.push_back(std::string(s.message()));
    }
  }
  std::error_code ec;
  fs::remove_all(scratch_dir_, ec);
  fs::remove(statePath(id_), ec);
  torn_down_ = true;
  if (!errors.empty()) {
    return absl::InternalError(
        absl::StrCat("teardown of cluster ", id_, ": ", absl::StrJoin(errors, "; ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<const Pod*> Cluster::findPod(const std::string& name) const {
  for (const Node& node : nodes_) {
    for (const Pod& pod : node.pods) {
      if (pod.name == name) {
        return &pod;
      }
    }
  }
  return absl::NotFoundError(absl::StrCat("cluster ", id_, " has no pod '", name, "'"));
}

absl::StatusOr<ProcessResult> Cluster::run(const Pod& pod, const std::vector<std::string>& argv,
                                           absl::Duration timeout, const std::string& input) const {
  return runProcess(pod.placement(), argv, timeout, input);
}

absl::StatusOr<std::unique_ptr<Process>> Cluster::spawn(
    const Pod& pod, const std::vector<std::string>& argv) const {
  return spawnProcess(pod.placement(), argv, logPath(pod.name));
}

absl::StatusOr<std::unique_ptr<Process>> Cluster::spawnAgent(
    const Node& node, const std::vector<std::string>& argv) const {
  return spawnProcess({"", node.agent_cgroup_path}, argv, logPath(node.name + "-agent"));
}

std::string Cluster::logPath(const std::string& stem) const {
  return absl::StrCat(scratch_dir_, "/", stem, "-", ++log_counter_, ".log");
}

absl::StatusOr<Leftovers> findLeftovers(bool stale_only) {
  Leftovers found;
  auto keep = [&](const std::string& id) {
    if (!stale_only) {
      return true;
    }
    return !id.empty() && !ownerAlive(id);  // names off the harness pattern are not ours to judge
  };
  std::error_code ec;
  size_t offset = sizeof(kPrefix);  // "ferry-" then the id
  if (fs::exists("/run/netns")) {
    for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
      std::string name = e.path().filename();
      if (absl::StartsWith(name, kPrefix) && keep(idOf(name, offset))) {
        found.netns.push_back(name);
      }
    }
  }
  absl::StatusOr<ProcessResult> links =
      runProcess({}, {"ip", "-o", "link", "show"}, absl::Seconds(10));
  if (!links.ok()) {
    return links.status();
  }
  for (absl::string_view line : absl::StrSplit(links->out, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(": @"), absl::SkipEmpty());
    if (fields.size() > 1 && absl::StartsWith(fields[1], kPrefix)) {
      std::string name(fields[1]);
      if (keep(idOf(name, offset - 1))) {
        found.links.push_back(name);
      }
    }
  }
  for (const auto& [root, list] : {std::pair{std::string(kCgroupRoot), &found.cgroups},
                                   std::pair{std::string(kBpffsRoot), &found.pins}}) {
    if (!fs::exists(root)) {
      continue;
    }
    for (const auto& e : fs::directory_iterator(root, ec)) {
      std::string name = e.path().filename();
      if (absl::StartsWith(name, std::string(kPrefix) + "-") && keep(idOf(name, offset))) {
        list->push_back(e.path().string());
      }
    }
  }
  if (fs::exists(kStateDir)) {
    for (const auto& e : fs::directory_iterator(kStateDir, ec)) {
      std::string id = e.path().stem();
      if (keep(isClusterId(id) ? id : "")) {
        found.state_files.push_back(e.path().string());
      }
    }
  }
  return found;
}

absl::StatusOr<Leftovers> cleanupLeftovers(bool stale_only) {
  absl::StatusOr<Leftovers> found = findLeftovers(stale_only);
  if (!found.ok()) {
    return found;
  }
  std::vector<std::string> errors;
  for (const std::string& cg : found->cgroups) {
    if (absl::Status s = removeCgroupTree(cg); !s.ok()) {
      errors.push_back(std::string(s.message()));
    }
  }
  std::vector<std::string> cmds;
  for (const std::string& ns : found->netns) {
    cmds.push_back("netns del " + ns);
  }
  for (const std::string& link : found->links) {
    cmds.push_back("link del " + link);
  }
  if (!cmds.empty()) {
    if (absl::Status s = ipBatch(cmds); !s.ok()) {
      errors.push_back(std::string(s.message()));
    }
  }
  std::error_code ec;
  for (const auto& list : {found->pins, found->state_files}) {
    for (const std::string& path : list) {
      fs::remove_all(path, ec);
      if (ec) {
        errors.push_back(absl::StrCat("remove ", path, ": ", ec.message()));
      }
    }
  }
  for (const std::string& ns : found->netns) {
    std::string id = idOf(ns, sizeof(kPrefix));
    if (!id.empty()) {
      fs::remove_all(absl::StrCat("/tmp/", kPrefix, "-", id, "-scratch"), ec);
    }
  }
  if (!errors.empty()) {
    return absl::InternalError(absl::StrJoin(errors, "; "));
  }
  return found;
}

}  // namespace ferry::harness
