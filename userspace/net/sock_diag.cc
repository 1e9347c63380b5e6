// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "net/sock_diag.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ferry::net {
namespace {

bool isMapped(const Addr16& a) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), kPrefix, sizeof(kPrefix)) == 0;
}

// inet_diag addresses: IPv4 in the first word, IPv6 in all four; IPv4-mapped IPv6 sockets are
// looked up by the kernel in the IPv4 tables when both ends are mapped.
void fill(__be32 out[4], const Addr16& a, int family) {
  std::memset(out, 0, 16);
  if (family == AF_INET) {
    std::memcpy(out, a.data() + 12, 4);
  } else {
    std::memcpy(out, a.data(), 16);
  }
}

}  // namespace

absl::Status destroyTcpSocket(int diag_fd, const TcpSocketId& id) {
  int family = id.family;
  if (family == AF_INET6 && isMapped(id.local) && isMapped(id.remote)) {
    family = AF_INET;  // a dual-stack socket on IPv4 lives in the IPv4 tables
  }
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof(message);
  message.header.nlmsg_type = SOCK_DESTROY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  message.header.nlmsg_seq = 1;
  message.request.sdiag_family = static_cast<uint8_t>(family);
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = ~0u;
  message.request.id.idiag_sport = htons(id.local_port);
  message.request.id.idiag_dport = htons(id.remote_port);
  fill(message.request.id.idiag_src, id.local, family);
  fill(message.request.id.idiag_dst, id.remote, family);
  if (id.cookie != 0) {
    message.request.id.idiag_cookie[0] = static_cast<uint32_t>(id.cookie);
    message.request.id.idiag_cookie[1] = static_cast<uint32_t>(id.cookie >> 32);
  } else {
    message.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    message.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(diag_fd, &message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
    return absl::ErrnoToStatus(errno, "sock_diag SOCK_DESTROY send");
  }
  alignas(nlmsghdr) char reply[512];
  ssize_t n = ::recv(diag_fd, reply, sizeof(reply), 0);
  if (n < 0) {
    return absl::ErrnoToStatus(errno, "sock_diag SOCK_DESTROY reply");
  }
  auto* header = reinterpret_cast<const nlmsghdr*>(reply);
  if (!NLMSG_OK(header, static_cast<unsigned>(n)) || header->nlmsg_type != NLMSG_ERROR) {
    return absl::InternalError("sock_diag SOCK_DESTROY: unexpected reply");
  }
  int error = -reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(header))->error;
  if (error == 0) {
    return absl::OkStatus();
  }
  if (error == EOPNOTSUPP) {
    return absl::UnimplementedError(
        "sock_diag SOCK_DESTROY: not supported by this kernel (CONFIG_INET_DIAG_DESTROY)");
  }
  return absl::ErrnoToStatus(error, "sock_diag SOCK_DESTROY");
}

absl::Status probeSocketDestroy() {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, "socket(NETLINK_SOCK_DIAG)");
  }
  TcpSocketId nobody{.family = AF_INET, .local_port = 1, .remote_port = 1};
  nobody.local[10] = nobody.local[11] = 0xff;  // ::ffff:0.0.0.0
  nobody.remote[10] = nobody.remote[11] = 0xff;
  absl::Status s = destroyTcpSocket(fd, nobody);
  ::close(fd);
  return absl::IsNotFound(s) ? absl::OkStatus()
         : s.ok()            ? absl::InternalError("destroyed a socket that cannot exist")
                             : s;
}

}  // namespace ferry::net
