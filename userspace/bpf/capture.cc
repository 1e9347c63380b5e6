// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Capture: load, attach (or replace pinned links), detach. Pod and map operations are in
// capture_pods.cc.
#include "bpf/capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "bpf/features.h"
#include "bpf/skeletons.h"
#include "net/netns.h"
#include "net/socket_address.h"

namespace ferry::bpf {
namespace {

std::string errnoText(int err) {
  return std::strerror(err < 0 ? -err : err);
}

bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

// b is a or lies below it.
bool isUnder(const std::string& a, const std::string& b) {
  return a == b || b.rfind(a == "/" ? a : a + "/", 0) == 0;
}

uint32_t maxEntries(const BpfConfig& c, int id) {
  switch (id) {
    case kMapPods:
      return c.max_pods;
    case kMapPodAddrs:
    case kMapInboundListeners:
      return 2 * c.max_pods;
    case kMapCidrs:
      return c.max_cidrs;
    case kMapPorts:
      return c.max_ports;
    case kMapOrigByCookie:
    case kMapConns:
      return c.max_connections;
    case kMapSplice:
      return c.max_spliced;
    case kMapDirect:
      return FERRY_DEFAULT_MAX_DIRECT;
    case kMapDirectConns:
      return c.max_connections;
    case kMapEvents:
      return FERRY_EVENTS_BYTES;
    default:
      return FERRY_CTR_COUNT;
  }
}

// A pinned map can be reused only if it is exactly what this build would create.
bool compatible(int fd, const bpf_map* want) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    return false;
  }
  return info.type == bpf_map__type(want) && info.key_size == bpf_map__key_size(want) &&
         info.value_size == bpf_map__value_size(want) &&
         info.max_entries == bpf_map__max_entries(want) &&
         info.map_flags == bpf_map__map_flags(want);
}

uint64_t linkTargetId(const bpf_link_info& info) {
  switch (info.type) {
    case BPF_LINK_TYPE_CGROUP:
      return info.cgroup.cgroup_id;
    case BPF_LINK_TYPE_NETNS:
      return info.netns.netns_ino;
    default:
      return 0;
  }
}

uint32_t linkId(int fd) {
  bpf_link_info link{};
  uint32_t len = sizeof(link);
  if (bpf_obj_get_info_by_fd(fd, &link, &len) == 0) {
    return link.id;
  }
  return 0;
}

uint32_t programId(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

}  // namespace

std::string OriginalDestination::toString() const {
  net::SocketAddress sa = net::SocketAddress::fromSockaddr(
      reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  return absl::StrCat(sa.str(), " from pod ", pod_index);
}

Capture::Capture(BpfConfig config, std::unique_ptr<Skeletons> skeletons)
    : config_(std::move(config)), skels_(std::move(skeletons)) {}

Capture::~Capture() = default;

absl::StatusOr<std::unique_ptr<Capture>> Capture::start(const BpfConfig& config) {
  if (absl::Status s = validateConfig(config); !s.ok()) {
    return s;
  }
  FeatureProbeTargets targets;
  targets.cgroup_path = config.pod_cgroup;
  if (absl::Status s = probeFeatures(targets).status(); !s.ok()) {
    return s;
  }
  if (absl::Status s = ensureBpffs(config.bpffs_root); !s.ok()) {
    return s;
  }
  auto skels = std::make_unique<Skeletons>();
  if (!skels->opened()) {
    return absl::InternalError(
        absl::StrCat("opening the BPF skeletons failed: ", errnoText(errno)));
  }
  std::unique_ptr<Capture> capture(new Capture(config, std::move(skels)));
  if (absl::Status s = capture->load(); !s.ok()) {
    return s;
  }
  if (absl::Status s = capture->attachAll(); !s.ok()) {
    return s;
  }
  if (absl::Status s = capture->recoverPods(); !s.ok()) {
    return s;
  }
  return capture;
}

std::string Capture::linkPin(const std::string& name) const {
  return absl::StrCat(config_.pin_dir, "/links/", name);
}

absl::Status Capture::load() {
  for (const char* sub : {"/maps", "/links"}) {
    if (absl::Status s = makeDirs(config_.pin_dir + sub); !s.ok()) {
      return s;
    }
  }
  skels_->connect->rodata->ferry_agent_mark = config_.agent_mark;
  skels_->sockops->rodata->ferry_splice_enabled = config_.splice ? 1 : 0;
  auto all = skels_->maps();
  for (MapArray& maps : all) {
    for (int id = 0; id < kMapCount; ++id) {
      bpf_map__set_max_entries(maps[id], maxEntries(config_, id));
    }
  }
  std::array<bool, kMapCount> reused{};
  for (int id = 0; id < kMapCount; ++id) {
    std::string pin = absl::StrCat(config_.pin_dir, "/maps/", bpf_map__name(all[0][id]));
    if (!exists(pin)) {
      continue;
    }
    UniqueFd fd(bpf_obj_get(pin.c_str()));
    if (fd.valid() && compatible(fd.get(), all[0][id])) {
      for (MapArray& maps : all) {
        if (bpf_map__reuse_fd(maps[id], fd.get()) != 0) {
          return absl::InternalError(absl::StrCat("reusing pinned map ", pin, " failed"));
        }
      }
      reused[id] = true;
      continue;
    }
    notes_.push_back(absl::StrCat("pinned map ", pin,
                                  " does not match this build or config; recreated it (its "
                                  "entries are lost)"));
    ::unlink(pin.c_str());
  }
  if (int err = ferry_connect__load(skels_->connect.get()); err != 0) {
    return absl::InternalError(
        absl::StrCat("loading connect.bpf.c failed (verifier log above): ", errnoText(err)));
  }
  for (int id = 0; id < kMapCount; ++id) {
    if (!reused[id]) {
      std::string pin = absl::StrCat(config_.pin_dir, "/maps/", bpf_map__name(all[0][id]));
      if (int err = bpf_map__pin(all[0][id], pin.c_str()); err != 0) {
        return absl::InternalError(absl::StrCat("pinning ", pin, ": ", errnoText(err)));
      }
      for (size_t s = 1; s < all.size(); ++s) {
        bpf_map__reuse_fd(all[s][id], bpf_map__fd(all[0][id]));
      }
    }
  }
  if (int err = ferry_sk_lookup__load(skels_->sk_lookup.get()); err != 0) {
    return absl::InternalError(
        absl::StrCat("loading sk_lookup.bpf.c failed (verifier log above): ", errnoText(err)));
  }
  if (int err = ferry_sockops__load(skels_->sockops.get()); err != 0) {
    return absl::InternalError(
        absl::StrCat("loading sockops.bpf.c failed (verifier log above): ", errnoText(err)));
  }
  if (int err = ferry_sk_msg__load(skels_->sk_msg.get()); err != 0) {
    return absl::InternalError(
        absl::StrCat("loading sk_msg.bpf.c failed (verifier log above): ", errnoText(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> Capture::attachPinned(const std::string& name, int prog_fd, int target_fd,
                                               int attach_type, uint64_t target_id) {
  std::string pin = linkPin(name);
  if (exists(pin)) {
    UniqueFd old(bpf_obj_get(pin.c_str()));
    if (old.valid()) {
      bpf_link_info info{};
      uint32_t len = sizeof(info);
      bool same_target = bpf_obj_get_info_by_fd(old.get(), &info, &len) == 0 &&
                         (target_id == 0 || linkTargetId(info) == target_id);
      if (same_target && bpf_link_update(old.get(), prog_fd, nullptr) == 0) {
        return old;  // replaced in place: capture never paused
      }
      bpf_link_detach(old.get());
    }
    ::unlink(pin.c_str());
  }
  UniqueFd link(
      bpf_link_create(prog_fd, target_fd, static_cast<bpf_attach_type>(attach_type), nullptr));
  if (!link.valid()) {
    return absl::InternalError(absl::StrCat("attaching ", name, ": ", errnoText(errno)));
  }
  if (bpf_obj_pin(link.get(), pin.c_str()) != 0) {
    int err = errno;
    bpf_link_detach(link.get());
    return absl::InternalError(absl::StrCat("pinning ", pin, ": ", errnoText(err)));
  }
  return link;
}

absl::Status Capture::attachAll() {
  std::string agent_cgroup = config_.agent_cgroup;
  if (agent_cgroup.empty()) {
    absl::StatusOr<std::string> self = selfCgroupPath();
    if (!self.ok()) {
      return self.status();
    }
    agent_cgroup = *self;
  }
  UniqueFd pods(::open(config_.pod_cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!pods.valid()) {
    return absl::NotFoundError(
        absl::StrCat("pod cgroup ", config_.pod_cgroup, ": ", errnoText(errno)));
  }
  absl::StatusOr<uint64_t> pods_id = cgroupId(config_.pod_cgroup);
  if (!pods_id.ok()) {
    return pods_id.status();
  }
  struct Want {
    std::string name;
    int prog_fd;
    int target_fd;
    int attach_type;
    uint64_t target_id;
  };
  std::vector<Want> wants = {
      {"connect4", bpf_program__fd(skels_->connect->progs.ferry_connect4), pods.get(),
       BPF_CGROUP_INET4_CONNECT, *pods_id},
      {"connect6", bpf_program__fd(skels_->connect->progs.ferry_connect6), pods.get(),
       BPF_CGROUP_INET6_CONNECT, *pods_id},
  };
  UniqueFd agent;
  {
    // sockops also files original destinations, so it is attached even without the splice.
    // One attachment covers a subtree; attaching to both an ancestor and a descendant would
    // run the program twice for the descendant's sockets.
    int sockops_fd = bpf_program__fd(skels_->sockops->progs.ferry_sockops);
    if (isUnder(agent_cgroup, config_.pod_cgroup)) {
      notes_.push_back(absl::StrCat("the agent's cgroup ", agent_cgroup,
                                    " contains the pod cgroup: sockops attached there only"));
    } else {
      wants.push_back({"sockops_pods", sockops_fd, pods.get(), BPF_CGROUP_SOCK_OPS, *pods_id});
    }
    if (!isUnder(config_.pod_cgroup, agent_cgroup)) {
      agent.reset(::open(agent_cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      absl::StatusOr<uint64_t> agent_id = cgroupId(agent_cgroup);
      if (!agent.valid() || !agent_id.ok()) {
        return absl::NotFoundError(
            absl::StrCat("agent cgroup ", agent_cgroup, " cannot be opened"));
      }
      wants.push_back({"sockops_agent", sockops_fd, agent.get(), BPF_CGROUP_SOCK_OPS, *agent_id});
    }
  }
  std::vector<std::string> wanted;
  for (const Want& w : wants) {
    absl::StatusOr<UniqueFd> link =
        attachPinned(w.name, w.prog_fd, w.target_fd, w.attach_type, w.target_id);
    if (!link.ok()) {
      return link.status();
    }
    links_.push_back(std::move(*link));
    wanted.push_back(w.name);
  }
  if (config_.splice) {
    int prog = bpf_program__fd(skels_->sk_msg->progs.ferry_sk_msg);
    absl::StatusOr<UniqueFd> link =
        attachPinned("sk_msg", prog, skels_->fd(kMapSplice), BPF_SK_MSG_VERDICT, 0);
    if (link.ok()) {
      links_.push_back(std::move(*link));
      wanted.push_back("sk_msg");
    } else {
      // Sockmap links arrived in Linux 6.10; before that the map owns the program, and the
      // pinned map keeps it attached across restarts just the same.
      if (bpf_prog_attach(prog, skels_->fd(kMapSplice), BPF_SK_MSG_VERDICT, 0) != 0) {
        return absl::InternalError(
            absl::StrCat("attaching sk_msg to the splice sockhash: ", errnoText(errno)));
      }
      sk_msg_prog_attached_ = true;
      notes_.push_back("no sockmap bpf_link support: sk_msg attached with bpf_prog_attach");
    }
  }
  // Links a previous run pinned that this configuration does not want any more.
  for (const std::string& name : listDir(config_.pin_dir + "/links")) {
    bool keep = name.rfind("sk_lookup_", 0) == 0;
    for (const std::string& w : wanted) {
      keep = keep || w == name;
    }
    if (!keep) {
      removeStaleLink(name);
    }
  }
  return absl::OkStatus();
}

void Capture::removeStaleLink(const std::string& name) {
  UniqueFd old(bpf_obj_get(linkPin(name).c_str()));
  if (old.valid()) {
    bpf_link_detach(old.get());
  }
  ::unlink(linkPin(name).c_str());
  notes_.push_back(absl::StrCat("removed stale link ", name));
}

absl::Status Capture::detachAll(const std::string& pin_dir) {
  std::string failures;
  std::string links = pin_dir + "/links";
  for (const std::string& name : listDir(links)) {
    std::string pin = links + "/" + name;
    UniqueFd link(bpf_obj_get(pin.c_str()));
    if (link.valid() && bpf_link_detach(link.get()) != 0) {
      absl::StrAppend(&failures, " detach ", pin, ": ", errnoText(errno), ";");
    }
    if (::unlink(pin.c_str()) != 0) {
      absl::StrAppend(&failures, " unlink ", pin, ": ", errnoText(errno), ";");
    }
  }
  std::string maps = pin_dir + "/maps";
  for (const std::string& name : listDir(maps)) {
    std::string pin = maps + "/" + name;
    if (::unlink(pin.c_str()) != 0) {
      absl::StrAppend(&failures, " unlink ", pin, ": ", errnoText(errno), ";");
    }
  }
  ::rmdir(links.c_str());
  ::rmdir(maps.c_str());
  if (!failures.empty()) {
    return absl::InternalError(absl::StrCat("detachAll(", pin_dir, "):", failures));
  }
  return absl::OkStatus();
}

absl::Status Capture::detachAll() {
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status status = detachAll(config_.pin_dir);
  if (sk_msg_prog_attached_) {
    bpf_prog_detach2(bpf_program__fd(skels_->sk_msg->progs.ferry_sk_msg), skels_->fd(kMapSplice),
                     BPF_SK_MSG_VERDICT);
    sk_msg_prog_attached_ = false;
  }
  links_.clear();
  pods_.clear();
  return status;
}

KernelObjectIds Capture::kernelObjectIds() const {
  std::lock_guard<std::mutex> lock(mu_);
  KernelObjectIds ids;
  for (const bpf_program* prog :
       {skels_->connect->progs.ferry_connect4, skels_->connect->progs.ferry_connect6,
        skels_->sk_lookup->progs.ferry_sk_lookup, skels_->sockops->progs.ferry_sockops,
        skels_->sk_msg->progs.ferry_sk_msg}) {
    ids.programs.push_back(programId(bpf_program__fd(prog)));
  }
  for (const UniqueFd& link : links_) {
    ids.links.push_back(linkId(link.get()));
  }
  for (const auto& [cookie, pod] : pods_) {
    if (pod.link.valid()) {
      ids.links.push_back(linkId(pod.link.get()));
    }
  }
  return ids;
}

int Capture::mapFd(int which) const {
  return skels_->fd(static_cast<MapId>(which));
}

}  // namespace ferry::bpf
