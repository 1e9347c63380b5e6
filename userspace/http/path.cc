// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/path.h"

#include "http/chars.h"

namespace ferry::http {

namespace {

constexpr char kHexUpper[] = "0123456789ABCDEF";

// RFC 3986 5.2.4 over a path that starts with '/', in place. Segments "." and ".." are
// removed; ".." never climbs above the root.
// A segment like "..;x" is a dot segment to servlet containers (Tomcat strips path
// parameters before resolving dots) and an ordinary name to everyone else, so it is refused.
bool hasDotSegmentWithParameters(std::string_view p) {
  size_t i = 0;
  while (i < p.size()) {
    size_t end = p.find('/', i + 1);
    std::string_view seg = p.substr(i + 1, end == std::string_view::npos ? p.npos : end - i - 1);
    size_t semi = seg.find(';');
    if (semi != std::string_view::npos) {
      std::string_view base = seg.substr(0, semi);
      if (base == "." || base == "..") {
        return true;
      }
    }
    if (end == std::string_view::npos) {
      break;
    }
    i = end;
  }
  return false;
}

void removeDotSegments(std::string& p) {
  std::string out;
  out.reserve(p.size());
  size_t i = 0;
  const size_t n = p.size();
  while (i < n) {
    // p[i] == '/' always holds here.
    size_t end = p.find('/', i + 1);
    if (end == std::string::npos) {
      end = n;
    }
    std::string_view seg(p.data() + i + 1, end - i - 1);
    const bool last = end == n;
    if (seg == ".") {
      if (last) {
        out.push_back('/');
      }
    } else if (seg == "..") {
      size_t cut = out.rfind('/');
      out.resize(cut == std::string::npos ? 0 : cut);
      if (last) {
        out.push_back('/');
      }
    } else {
      out.push_back('/');
      out.append(seg);
    }
    i = end;
  }
  if (out.empty()) {
    out.push_back('/');
  }
  p.swap(out);
}

void mergeSlashes(std::string& p) {
  size_t w = 0;
  for (size_t r = 0; r < p.size(); ++r) {
    if (p[r] == '/' && w > 0 && p[w - 1] == '/') {
      continue;
    }
    p[w++] = p[r];
  }
  p.resize(w);
}

}  // namespace

absl::StatusOr<std::string> normalizePath(std::string_view path, const PathOptions& options) {
  if (path.empty() || (path[0] != '/' && path[0] != '\\')) {
    return absl::InvalidArgumentError("path does not start with '/'");
  }
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '%') {
      if (i + 2 >= path.size() || !chars::isHex(path[i + 1]) || !chars::isHex(path[i + 2])) {
        return absl::InvalidArgumentError("malformed percent-encoding in path");
      }
      const char v =
          static_cast<char>(chars::hexValue(path[i + 1]) * 16 + chars::hexValue(path[i + 2]));
      i += 2;
      if (v == '\0') {
        return absl::InvalidArgumentError("encoded NUL (%00) in path");
      }
      if (v == '/' || v == '\\') {
        switch (options.escaped_slashes) {
          case EscapedSlashes::kReject:
            return absl::InvalidArgumentError("encoded slash (%2F or %5C) in path");
          case EscapedSlashes::kDecode:
            out.push_back('/');  // a decoded backslash becomes a slash in step 3 anyway
            continue;
          case EscapedSlashes::kKeep:
            break;
        }
      }
      if (chars::is(v, chars::kUnreserved)) {
        out.push_back(v);
      } else {
        out.push_back('%');
        out.push_back(kHexUpper[static_cast<uint8_t>(v) >> 4]);
        out.push_back(kHexUpper[static_cast<uint8_t>(v) & 0xf]);
      }
      continue;
    }
    if (c == '\\') {
      out.push_back('/');
      continue;
    }
    if (c == '/' || chars::is(c, chars::kPchar)) {
      out.push_back(c);
      continue;
    }
    if (c == '#') {
      return absl::InvalidArgumentError("fragment ('#') in path");
    }
    if (c == '\0') {
      return absl::InvalidArgumentError("NUL in path");
    }
    std::string msg = "invalid character 0x";
    msg.push_back(kHexUpper[(c >> 4) & 0xf]);
    msg.push_back(kHexUpper[c & 0xf]);
    msg.append(" in path");
    return absl::InvalidArgumentError(msg);
  }
  if (options.merge_slashes) {
    mergeSlashes(out);
  }
  if (hasDotSegmentWithParameters(out)) {
    return absl::InvalidArgumentError("dot segment with path parameters (\"..;\") in path");
  }
  removeDotSegments(out);
  return out;
}

std::string RequestTarget::forwarded() const {
  switch (form) {
    case Form::kAuthority:
      return std::string(authority);
    case Form::kAsterisk:
      return "*";
    default:
      break;
  }
  if (!has_query) {
    return path;
  }
  std::string out;
  out.reserve(path.size() + 1 + query.size());
  out.append(path).append(1, '?').append(query);
  return out;
}

absl::StatusOr<RequestTarget> parseRequestTarget(std::string_view method, std::string_view target,
                                                 const PathOptions& options) {
  RequestTarget rt;
  const bool connect = method == "CONNECT";
  if (connect) {
    // authority-form = uri-host ":" port; no path, no userinfo.
    size_t colon = target.rfind(':');
    if (target.empty() || target[0] == '/' || colon == std::string_view::npos ||
        colon + 1 == target.size() || target.find_first_of("/?@#") != std::string_view::npos) {
      return absl::InvalidArgumentError("CONNECT needs an authority-form target (host:port)");
    }
    for (char c : target.substr(colon + 1)) {
      if (c < '0' || c > '9') {
        return absl::InvalidArgumentError("invalid port in CONNECT target");
      }
    }
    for (char c : target.substr(0, colon)) {
      if (!chars::is(c, chars::kRegName) && c != '[' && c != ']' && c != ':') {
        return absl::InvalidArgumentError("invalid host in CONNECT target");
      }
    }
    rt.form = RequestTarget::Form::kAuthority;
    rt.authority = target;
    return rt;
  }
  if (target == "*") {
    if (method != "OPTIONS") {
      return absl::InvalidArgumentError("asterisk-form target is only valid with OPTIONS");
    }
    rt.form = RequestTarget::Form::kAsterisk;
    return rt;
  }
  std::string_view rest = target;
  if (rest[0] != '/' && rest[0] != '\\') {
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    size_t sep = rest.find("://");
    if (sep == std::string_view::npos) {
      return absl::InvalidArgumentError("request target is neither origin-form nor absolute-form");
    }
    std::string_view scheme = rest.substr(0, sep);
    if (!chars::equalsIgnoreCase(scheme, "http") && !chars::equalsIgnoreCase(scheme, "https")) {
      return absl::InvalidArgumentError("absolute-form target with a scheme other than http(s)");
    }
    rest.remove_prefix(sep + 3);
    size_t end = rest.find_first_of("/?\\");
    std::string_view authority = rest.substr(0, end);
    if (authority.empty()) {
      return absl::InvalidArgumentError("absolute-form target without a host");
    }
    if (authority.find('@') != std::string_view::npos) {
      return absl::InvalidArgumentError("userinfo ('@') in absolute-form target");
    }
    for (char c : authority) {
      if (!chars::is(c, chars::kRegName) && c != '[' && c != ']' && c != ':') {
        return absl::InvalidArgumentError("invalid character in absolute-form authority");
      }
    }
    rt.form = RequestTarget::Form::kAbsolute;
    rt.authority = authority;
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  }
  size_t q = rest.find('?');
  std::string_view path = rest.substr(0, q);
  if (q != std::string_view::npos) {
    rt.has_query = true;
    rt.query = rest.substr(q + 1);
    // The query is not matched by policy; it only must not hide framing or a fragment.
    for (char c : rt.query) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '#' || u <= 0x20 || u >= 0x7f) {
        return absl::InvalidArgumentError("invalid character in query");
      }
    }
  }
  if (path.empty()) {
    path = "/";  // absolute-form with an empty path, or "?q" right after the authority
  }
  auto normalized = normalizePath(path, options);
  if (!normalized.ok()) {
    return normalized.status();
  }
  rt.path = *std::move(normalized);
  return rt;
}

}  // namespace ferry::http
