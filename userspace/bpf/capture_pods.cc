// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Capture: pods, inbound listeners, CIDRs, ports, original destinations, counters.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "bpf/capture.h"
#include "bpf/skeletons.h"
#include "net/netns.h"
#include "net/socket_address.h"

namespace ferry::bpf {
namespace {

std::string errnoText(int err) {
  return std::strerror(err < 0 ? -err : err);
}

std::string cookieName(uint64_t cookie) {
  return absl::StrCat("sk_lookup_", cookie);
}

// Every key of a map, read with get_next_key (works for hash, LRU and LPM trie maps).
template <typename Key>
std::vector<Key> mapKeys(int fd) {
  std::vector<Key> keys;
  Key key{};
  Key next{};
  Key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  return keys;
}

ferry_addr_key addrKey(const net::Addr16& a) {
  ferry_addr_key k{};
  std::memcpy(k.addr, a.data(), 16);
  return k;
}

}  // namespace

absl::StatusOr<uint32_t> Capture::allocateIndex() const {
  std::set<uint32_t> used;
  for (const auto& [cookie, pod] : pods_) {
    used.insert(pod.index);
  }
  for (uint32_t i = 0; i < config_.max_pods; ++i) {
    if (!used.count(i)) {
      return i;
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("all ", config_.max_pods, " pod slots are in use (BpfConfig.max_pods)"));
}

absl::StatusOr<PodHandle> Capture::enrollPod(const PodSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<net::Addr16> addresses;
  ferry_pod_config config{};
  if (!spec.ipv4.empty()) {
    std::optional<net::IpAddress> ip = net::IpAddress::parse(spec.ipv4);
    if (!ip || !ip->v4) {
      return absl::InvalidArgumentError(absl::StrCat("pod ", spec.netns_path, ": ipv4 \"",
                                                     spec.ipv4, "\" is not an IPv4 address"));
    }
    std::memcpy(config.outbound_addr4, ip->bytes.data(), 4);
    addresses.push_back(ip->addr16());
  }
  if (!spec.ipv6.empty()) {
    std::optional<net::IpAddress> ip = net::IpAddress::parse(spec.ipv6);
    if (!ip || ip->v4) {
      return absl::InvalidArgumentError(absl::StrCat("pod ", spec.netns_path, ": ipv6 \"",
                                                     spec.ipv6, "\" is not an IPv6 address"));
    }
    std::memcpy(config.outbound_addr6, ip->bytes.data(), 16);
    addresses.push_back(ip->addr16());
  }
  if (addresses.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod ", spec.netns_path, ": needs at least one of ipv4, ipv6"));
  }
  absl::StatusOr<uint64_t> cookie = net::netnsCookie(spec.netns_path);
  if (!cookie.ok()) {
    return cookie.status();
  }
  UniqueFd netns(::open(spec.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!netns.valid() || ::fstat(netns.get(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("network namespace ", spec.netns_path, ": ", errnoText(errno)));
  }
  auto existing = pods_.find(*cookie);
  uint32_t index = 0;
  if (existing != pods_.end()) {
    index = existing->second.index;
  } else {
    absl::StatusOr<uint32_t> fresh = allocateIndex();
    if (!fresh.ok()) {
      return fresh.status();
    }
    index = *fresh;
  }
  config.outbound_port = config_.outbound_port;
  config.pod_index = index;
  config.flags = spec.opt_out ? FERRY_POD_F_OPT_OUT : 0;

  // Outbound capture starts with this update; inbound with the sk_lookup link below, refusing
  // until the agent registers its 15006 listener.
  if (bpf_map_update_elem(mapFd(kMapPods), &*cookie, &config, BPF_ANY) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("enrolling ", spec.netns_path, ": ferry_pods: ", errnoText(errno)));
  }
  if (existing != pods_.end()) {
    for (const net::Addr16& old : existing->second.addresses) {
      ferry_addr_key k = addrKey(old);
      bpf_map_delete_elem(mapFd(kMapPodAddrs), &k);
    }
  }
  ferry_pod_addr_value value{index, config.flags};
  for (const net::Addr16& a : addresses) {
    ferry_addr_key k = addrKey(a);
    if (bpf_map_update_elem(mapFd(kMapPodAddrs), &k, &value, BPF_ANY) != 0) {
      return absl::ResourceExhaustedError(
          absl::StrCat("enrolling ", spec.netns_path, ": ferry_pod_addrs: ", errnoText(errno)));
    }
  }
  absl::StatusOr<UniqueFd> link =
      attachPinned(cookieName(*cookie), bpf_program__fd(skels_->sk_lookup->progs.ferry_sk_lookup),
                   netns.get(), BPF_SK_LOOKUP, st.st_ino);
  if (!link.ok()) {
    return link.status();
  }
  PodState& pod = pods_[*cookie];
  pod.index = index;
  pod.cookie = *cookie;
  pod.addresses = addresses;
  pod.link = std::move(*link);
  return PodHandle{index, *cookie};
}

void Capture::removePod(PodState& pod) {
  bpf_map_delete_elem(mapFd(kMapPods), &pod.cookie);
  for (const net::Addr16& a : pod.addresses) {
    ferry_addr_key k = addrKey(a);
    bpf_map_delete_elem(mapFd(kMapPodAddrs), &k);
  }
  for (uint32_t slot : {FERRY_LISTENER_SLOT(pod.index, 0), FERRY_LISTENER_SLOT(pod.index, 1)}) {
    bpf_map_delete_elem(mapFd(kMapInboundListeners), &slot);
  }
  std::string pin = linkPin(cookieName(pod.cookie));
  UniqueFd link = std::move(pod.link);
  if (!link.valid()) {
    link.reset(bpf_obj_get(pin.c_str()));
  }
  if (link.valid()) {
    bpf_link_detach(link.get());
  }
  ::unlink(pin.c_str());
}

absl::Status Capture::unenrollPod(uint64_t netns_cookie) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pods_.find(netns_cookie);
  if (it == pods_.end()) {
    return absl::NotFoundError(absl::StrCat("no enrolled pod with netns cookie ", netns_cookie));
  }
  removePod(it->second);
  pods_.erase(it);
  return absl::OkStatus();
}

absl::Status Capture::unenrollPod(const std::string& netns_path) {
  absl::StatusOr<uint64_t> cookie = net::netnsCookie(netns_path);
  if (!cookie.ok()) {
    return cookie.status();
  }
  return unenrollPod(*cookie);
}

absl::Status Capture::recoverPods() {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<uint32_t, std::vector<net::Addr16>> addresses;
  for (const ferry_addr_key& k : mapKeys<ferry_addr_key>(mapFd(kMapPodAddrs))) {
    ferry_pod_addr_value v{};
    if (bpf_map_lookup_elem(mapFd(kMapPodAddrs), &k, &v) == 0) {
      net::Addr16 a;
      std::memcpy(a.data(), k.addr, 16);
      addresses[v.pod_index].push_back(a);
    }
  }
  std::set<std::string> known;
  for (uint64_t cookie : mapKeys<uint64_t>(mapFd(kMapPods))) {
    ferry_pod_config config{};
    if (bpf_map_lookup_elem(mapFd(kMapPods), &cookie, &config) != 0) {
      continue;
    }
    PodState pod;
    pod.index = config.pod_index;
    pod.cookie = cookie;
    pod.addresses = addresses[config.pod_index];
    std::string pin = linkPin(cookieName(cookie));
    UniqueFd link(bpf_obj_get(pin.c_str()));
    int prog = bpf_program__fd(skels_->sk_lookup->progs.ferry_sk_lookup);
    if (!link.valid() || bpf_link_update(link.get(), prog, nullptr) != 0) {
      // The namespace died while the agent was away (its link is defunct): forget the pod.
      pod.link = std::move(link);
      removePod(pod);
      notes_.push_back(
          absl::StrCat("dropped pod ", config.pod_index, ": its network namespace is gone"));
      continue;
    }
    pod.link = std::move(link);
    known.insert(cookieName(cookie));
    pods_[cookie] = std::move(pod);
  }
  for (const std::string& name : listDir(config_.pin_dir + "/links")) {
    if (name.rfind("sk_lookup_", 0) == 0 && !known.count(name)) {
      removeStaleLink(name);
    }
  }
  return absl::OkStatus();
}

absl::Status Capture::setInboundListener(uint32_t pod_index, int listener_fd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pod_index >= config_.max_pods) {
    return absl::InvalidArgumentError(absl::StrCat("pod index ", pod_index, " out of range"));
  }
  int listening = 0;
  socklen_t len = sizeof(listening);
  if (::getsockopt(listener_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
    return absl::InvalidArgumentError("inbound listener fd is not a listening socket");
  }
  sockaddr_storage sa{};
  len = sizeof(sa);
  if (::getsockname(listener_fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("getsockname: ", errnoText(errno)));
  }
  std::vector<uint32_t> slots;
  if (sa.ss_family == AF_INET) {
    slots.push_back(FERRY_LISTENER_SLOT(pod_index, 0));
  } else {
    slots.push_back(FERRY_LISTENER_SLOT(pod_index, 1));
    int v6only = 0;
    len = sizeof(v6only);
    ::getsockopt(listener_fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len);
    if (!v6only) {
      slots.push_back(FERRY_LISTENER_SLOT(pod_index, 0));
    }
  }
  uint64_t fd = static_cast<uint64_t>(listener_fd);
  for (uint32_t slot : slots) {
    if (bpf_map_update_elem(mapFd(kMapInboundListeners), &slot, &fd, BPF_ANY) != 0) {
      return absl::InternalError(
          absl::StrCat("adding the inbound listener to ferry_in_lsn: ", errnoText(errno)));
    }
  }
  return absl::OkStatus();
}

absl::Status Capture::clearInboundListener(uint32_t pod_index) {
  std::lock_guard<std::mutex> lock(mu_);
  for (uint32_t slot : {FERRY_LISTENER_SLOT(pod_index, 0), FERRY_LISTENER_SLOT(pod_index, 1)}) {
    bpf_map_delete_elem(mapFd(kMapInboundListeners), &slot);
  }
  return absl::OkStatus();
}

absl::Status Capture::setMeshCidrs(const std::vector<std::string>& pod_cidrs,
                                   const std::vector<std::string>& service_cidrs) {
  std::vector<std::pair<ferry_lpm_key, ferry_cidr_value>> wanted;
  for (const auto& [list, kind] : {std::make_pair(&pod_cidrs, FERRY_CIDR_KIND_POD),
                                   std::make_pair(&service_cidrs, FERRY_CIDR_KIND_SERVICE)}) {
    for (const std::string& text : *list) {
      absl::StatusOr<net::Cidr> cidr = net::Cidr::parseExact(text);
      if (!cidr.ok()) {
        return cidr.status();
      }
      ferry_lpm_key key{};
      key.prefixlen = cidr->prefixLen128();
      std::memcpy(key.addr, cidr->base.addr16().data(), 16);
      wanted.push_back({key, ferry_cidr_value{static_cast<__u32>(kind)}});
    }
  }
  if (wanted.size() > config_.max_cidrs) {
    return absl::InvalidArgumentError(absl::StrCat(wanted.size(), " mesh CIDRs exceed ",
                                                   "BpfConfig.max_cidrs = ", config_.max_cidrs));
  }
  std::lock_guard<std::mutex> lock(mu_);
  int fd = mapFd(kMapCidrs);
  for (const auto& [key, value] : wanted) {
    if (bpf_map_update_elem(fd, &key, &value, BPF_ANY) != 0) {
      return absl::InternalError(absl::StrCat("ferry_cidrs update: ", errnoText(errno)));
    }
  }
  for (const ferry_lpm_key& key : mapKeys<ferry_lpm_key>(fd)) {
    bool keep = false;
    for (const auto& [w, value] : wanted) {
      keep = keep || (w.prefixlen == key.prefixlen && std::memcmp(w.addr, key.addr, 16) == 0);
    }
    if (!keep) {
      bpf_map_delete_elem(fd, &key);
    }
  }
  return absl::OkStatus();
}

absl::Status Capture::setExcludedPorts(PortDirection direction,
                                       const std::vector<uint16_t>& ports) {
  std::lock_guard<std::mutex> lock(mu_);
  int fd = mapFd(kMapPorts);
  auto dir = static_cast<uint8_t>(direction);
  for (uint16_t port : ports) {
    if (port == 0) {
      return absl::InvalidArgumentError("excluded port 0 is not a port");
    }
    ferry_port_key key{port, dir, 0};
    ferry_port_value value{};
    if (bpf_map_update_elem(fd, &key, &value, BPF_ANY) != 0) {
      return absl::ResourceExhaustedError(absl::StrCat("ferry_ports update (BpfConfig.max_ports = ",
                                                       config_.max_ports, "): ", errnoText(errno)));
    }
  }
  std::set<uint16_t> wanted(ports.begin(), ports.end());
  for (const ferry_port_key& key : mapKeys<ferry_port_key>(fd)) {
    if (key.direction == dir && !wanted.count(key.port)) {
      bpf_map_delete_elem(fd, &key);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<OriginalDestination> Capture::originalDestination(int accepted_fd) const {
  absl::StatusOr<uint64_t> cookie = net::socketNetnsCookie(accepted_fd);
  if (!cookie.ok()) {
    return cookie.status();
  }
  sockaddr_storage local{};
  sockaddr_storage peer{};
  socklen_t local_len = sizeof(local);
  if (::getsockname(accepted_fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("getsockname: ", errnoText(errno)));
  }
  socklen_t len = sizeof(peer);
  if (::getpeername(accepted_fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("getpeername: ", errnoText(errno)));
  }
  // The record is filed under the app's view: local = app end (our peer), remote = listener.
  ferry_conn_key key{};
  key.netns_cookie = *cookie;
  net::SocketAddress app =
      net::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&peer), len);
  net::SocketAddress listener =
      net::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&local), local_len);
  key.local_port = app.port();
  key.remote_port = listener.port();
  std::memcpy(key.local_addr, app.address().addr16().data(), 16);
  std::memcpy(key.remote_addr, listener.address().addr16().data(), 16);
  ferry_orig_dst orig{};
  if (bpf_map_lookup_elem(mapFd(kMapConns), &key, &orig) != 0) {
    return absl::NotFoundError(absl::StrCat(
        "no original destination for ", app.str(), " -> ", listener.str(),
        ": not a captured connection, or its record was evicted (BpfConfig.max_connections)"));
  }
  net::Addr16 dst;
  std::memcpy(dst.data(), orig.addr, 16);
  OriginalDestination out;
  out.address = net::SocketAddress::from(net::IpAddress::fromAddr16(dst), orig.port).storage;
  out.family = orig.family == FERRY_AF_INET6 ? AF_INET6 : AF_INET;
  out.pod_index = orig.pod_index;
  return out;
}

absl::StatusOr<Counters> Capture::counters() const {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) {
    return absl::InternalError("cannot count possible CPUs");
  }
  Counters out;
  std::vector<uint64_t> per_cpu(cpus);
  for (uint32_t c = 0; c < FERRY_CTR_COUNT; ++c) {
    if (bpf_map_lookup_elem(mapFd(kMapCounters), &c, per_cpu.data()) != 0) {
      return absl::InternalError(absl::StrCat("reading counter ", c, ": ", errnoText(errno)));
    }
    for (uint64_t v : per_cpu) {
      out.values[c] += v;
    }
  }
  return out;
}

absl::StatusOr<size_t> Capture::splicedSocketCount() const {
  return mapKeys<ferry_conn_key>(mapFd(kMapSplice)).size();
}

absl::StatusOr<size_t> Capture::originalDestinationCount() const {
  return mapKeys<ferry_conn_key>(mapFd(kMapConns)).size();
}

}  // namespace ferry::bpf
