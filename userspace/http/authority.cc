// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/authority.h"

#include "http/chars.h"

namespace ferry::http {

bool validAuthority(std::string_view h) {
  if (h.empty()) {
    return false;
  }
  size_t i = 0;
  if (h[0] == '[') {
    size_t close = h.find(']');
    if (close == std::string_view::npos || close < 3) {
      return false;
    }
    for (size_t k = 1; k < close; ++k) {
      char c = h[k];
      if (!(chars::isHex(c) || c == ':' || c == '.')) {
        return false;
      }
    }
    i = close + 1;
  } else {
    while (i < h.size() && h[i] != ':') {
      if (!chars::is(h[i], chars::kRegName) || h[i] == '%') {
        return false;
      }
      ++i;
    }
    if (i == 0) {
      return false;
    }
  }
  if (i == h.size()) {
    return true;
  }
  if (h[i] != ':') {
    return false;
  }
  std::string_view port = h.substr(i + 1);
  if (port.size() > 5) {
    return false;
  }
  for (char c : port) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;  // an empty port is allowed by RFC 3986
}

absl::StatusOr<std::string> normalizeAuthority(std::string_view authority) {
  if (!validAuthority(authority)) {
    return absl::InvalidArgumentError("invalid authority (host[:port])");
  }
  // validAuthority() guarantees the host ends at ']' (IP literal) or at the first ':'.
  const size_t host_end = authority[0] == '[' ? authority.find(']') + 1 : authority.find(':');
  std::string_view host = authority.substr(0, host_end);
  std::string_view port =
      host_end < authority.size() ? authority.substr(host_end + 1) : std::string_view();
  if (host[0] != '[' && host.ends_with('.')) {
    host.remove_suffix(1);
    if (host.empty() || host.ends_with('.')) {
      return absl::InvalidArgumentError("host name with an empty label");
    }
  }
  while (port.size() > 1 && port[0] == '0') {
    port.remove_prefix(1);
  }
  uint32_t port_value = 0;
  for (char c : port) {
    port_value = port_value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port_value > 65535) {
    return absl::InvalidArgumentError("port above 65535 in authority");
  }
  std::string out;
  out.reserve(host.size() + 1 + port.size());
  for (char c : host) {
    out.push_back(chars::toLower(c));
  }
  if (!port.empty()) {
    out.append(1, ':').append(port);
  }
  return out;
}

absl::StatusOr<std::string> requestAuthority(const MessageHead& head, const RequestTarget& target) {
  if (target.form == RequestTarget::Form::kAbsolute ||
      target.form == RequestTarget::Form::kAuthority) {
    return normalizeAuthority(target.authority);
  }
  if (head.host.empty()) {
    return absl::InvalidArgumentError("no Host header field and no authority in the target");
  }
  return normalizeAuthority(head.host);
}

std::string shadowAuthority(std::string_view authority) {
  // The port starts at the last ':' unless that ':' is inside an IP literal's brackets.
  size_t colon = authority.rfind(':');
  const size_t bracket = authority.rfind(']');
  if (colon != std::string_view::npos && bracket != std::string_view::npos && colon < bracket) {
    colon = std::string_view::npos;
  }
  std::string out(authority.substr(0, colon));
  out.append("-shadow");
  if (colon != std::string_view::npos) {
    out.append(authority.substr(colon));
  }
  return out;
}

void fieldsWithAuthority(std::span<const Header> received, std::string_view authority,
                         std::vector<Header>& out) {
  out.clear();
  out.reserve(received.size() + 1);
  out.push_back(Header{"Host", authority});
  for (const Header& h : received) {
    if (!chars::equalsIgnoreCase(h.name, "host")) {
      out.push_back(h);
    }
  }
}

}  // namespace ferry::http
