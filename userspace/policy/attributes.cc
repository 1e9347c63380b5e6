// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "policy/attributes.h"

#include <charconv>

#include "net/ip.h"
#include "policy/string_match.h"
#include "policy/text.h"

namespace ferry::policy {

absl::StatusOr<ConditionAttribute> parseConditionKey(std::string_view key) {
  struct Fixed {
    std::string_view name;
    AttributeKind kind;
  };
  static constexpr Fixed kFixed[] = {
      {"source.ip", AttributeKind::kSourceIp},
      {"remote.ip", AttributeKind::kRemoteIp},
      {"source.namespace", AttributeKind::kSourceNamespace},
      {"source.principal", AttributeKind::kSourcePrincipal},
      {"destination.ip", AttributeKind::kDestinationIp},
      {"destination.port", AttributeKind::kDestinationPort},
      {"connection.sni", AttributeKind::kConnectionSni},
      {"request.auth.principal", AttributeKind::kRequestPrincipal},
      {"request.auth.audiences", AttributeKind::kRequestAudiences},
      {"request.auth.presenter", AttributeKind::kRequestPresenter},
  };
  for (const auto& f : kFixed) {
    if (key == f.name) {
      return ConditionAttribute{f.kind, ""};
    }
  }
  constexpr std::string_view kHeaders = "request.headers[";
  if ((key).starts_with(kHeaders) && (key).ends_with("]")) {
    std::string_view name = key.substr(kHeaders.size(), key.size() - kHeaders.size() - 1);
    if (name.empty()) {
      return absl::InvalidArgumentError("request.headers[] needs a header name");
    }
    for (char c : name) {
      if (!text::isTchar(c)) {
        return absl::InvalidArgumentError(
            text::cat("'", key, "': header name has a character not allowed in HTTP"));
      }
    }
    return ConditionAttribute{AttributeKind::kRequestHeader, text::toLowerAscii(name)};
  }
  constexpr std::string_view kClaims = "request.auth.claims[";
  if ((key).starts_with(kClaims) && (key).ends_with("]")) {
    std::string_view path = key.substr(kClaims.size(), key.size() - kClaims.size() - 1);
    // Each name non-empty: "[]", "[a][]" and "[[a]" are refused.
    size_t start = 0;
    while (true) {
      size_t end = path.find("][", start);
      std::string_view name = path.substr(start, end == std::string_view::npos ? end : end - start);
      if (name.empty() || name.find_first_of("[]") != std::string_view::npos) {
        return absl::InvalidArgumentError(
            text::cat("'", key, "': expected request.auth.claims[<name>] or [<name>][<name>]..."));
      }
      if (end == std::string_view::npos) {
        break;
      }
      start = end + 2;
    }
    return ConditionAttribute{AttributeKind::kRequestClaim, "", std::string(path)};
  }
  return absl::InvalidArgumentError(text::cat(
      "unknown key '", key,
      "' (supported: request.headers[<name>], source.ip, remote.ip, source.namespace, "
      "source.principal, destination.ip, destination.port, connection.sni, request.auth.*)"));
}

bool isL4Attribute(AttributeKind kind) {
  switch (kind) {
    case AttributeKind::kSourceIp:
    case AttributeKind::kSourceNamespace:
    case AttributeKind::kSourcePrincipal:
    case AttributeKind::kDestinationIp:
    case AttributeKind::kDestinationPort:
      return true;
    default:
      return false;
  }
}

absl::Status checkConditionValue(const ConditionAttribute& attribute, std::string_view value) {
  switch (attribute.kind) {
    case AttributeKind::kSourceIp:
    case AttributeKind::kRemoteIp:
    case AttributeKind::kDestinationIp:
      return net::Cidr::parse(value).status();
    case AttributeKind::kDestinationPort:
      return parsePort(value).status();
    default:
      return checkPattern(value);
  }
}

absl::StatusOr<uint16_t> parsePort(std::string_view port_text) {
  uint32_t port = 0;
  if (!text::isDigits(port_text) || port_text.size() > 5 ||
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port).ec !=
          std::errc() ||
      port < 1 || port > 65535) {
    return absl::InvalidArgumentError(
        text::cat("'", port_text, "' is not a port number (1 to 65535)"));
  }
  return static_cast<uint16_t>(port);
}

absl::Status checkMethod(std::string_view method) {
  if (auto st = checkPattern(method); !st.ok()) {
    return st;
  }
  for (char c : method) {
    if (!text::isTchar(c)) {
      return absl::InvalidArgumentError(text::cat("'", method, "' is not an HTTP method token"));
    }
  }
  return absl::OkStatus();
}

absl::Status checkPath(std::string_view path) {
  if (path.find('{') != std::string_view::npos || path.find('}') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        text::cat("'", path, "': path templates ({*}, {**}) are not supported"));
  }
  if (auto st = checkPattern(path); !st.ok()) {
    return st;
  }
  if (path[0] != '/' && path[0] != '*') {
    return absl::InvalidArgumentError(text::cat("'", path, "' must start with '/'"));
  }
  return absl::OkStatus();
}

}  // namespace ferry::policy
