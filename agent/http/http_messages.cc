// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/http_messages.h"

#include "http/chars.h"
#include "http/status.h"

namespace ferry::agent {
namespace {

bool fieldValueOk(std::string_view v) {
  for (char c : v) {
    if (!http::chars::is(c, http::chars::kFieldVchar) && c != ' ' && c != '\t') {
      return false;
    }
  }
  return true;
}

void appendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// The edits' additions; a route must not be able to change framing or break the head.
void appendAdditions(std::string& out, const http::HeaderEdits& edits) {
  using http::chars::equalsIgnoreCase;
  for (const auto& [name, value] : edits.additions()) {
    if (!http::chars::isToken(name) || !fieldValueOk(value) || hopByHopField(name) ||
        equalsIgnoreCase(name, "content-length") || equalsIgnoreCase(name, "transfer-encoding") ||
        equalsIgnoreCase(name, "host")) {
      continue;
    }
    appendField(out, name, value);
  }
}

}  // namespace

bool hopByHopField(std::string_view name) {
  using http::chars::equalsIgnoreCase;
  for (std::string_view h :
       {"connection", "keep-alive", "proxy-connection", "expect", "upgrade", "te"}) {
    if (equalsIgnoreCase(name, h)) {
      return true;
    }
  }
  return false;
}

std::string forwardedRequestHead(std::string_view method, std::span<const http::Header> fields,
                                 std::string_view target, const http::HeaderEdits& edits) {
  using http::chars::equalsIgnoreCase;
  std::string out;
  out.reserve(256);
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  for (const http::Header& h : fields) {
    if (hopByHopField(h.name) || (!edits.empty() && edits.removes(h.name))) {
      continue;
    }
    appendField(out, h.name, h.value);
  }
  appendAdditions(out, edits);
  out.append("\r\n");
  return out;
}

std::string forwardedResponseHead(const http::MessageHead& head, bool close,
                                  const http::HeaderEdits& edits) {
  std::string out;
  out.reserve(256);
  out.append("HTTP/1.1 ").append(std::to_string(head.status)).append(" ");
  out.append(head.reason.empty() ? http::reasonPhrase(head.status) : head.reason).append("\r\n");
  for (const http::Header& h : head.headers) {
    if (!hopByHopField(h.name) && (edits.empty() || !edits.removes(h.name))) {
      appendField(out, h.name, h.value);
    }
  }
  appendAdditions(out, edits);
  if (close) {
    out.append("connection: close\r\n");
  }
  out.append("\r\n");
  return out;
}

std::string localReply(int status, std::string_view body, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out.append(http::reasonPhrase(status)).append("\r\n");
  appendField(out, "content-length", std::to_string(body.size()));
  appendField(out, "content-type", "text/plain");
  appendField(out, "server", "ferry");
  if (close) {
    out.append("connection: close\r\n");
  }
  out.append("\r\n").append(body);
  return out;
}

std::string redirectReply(int status, std::string_view location, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out.append(http::reasonPhrase(status)).append("\r\n");
  appendField(out, "location", location);
  appendField(out, "content-length", "0");
  appendField(out, "server", "ferry");
  if (close) {
    out.append("connection: close\r\n");
  }
  out.append("\r\n");
  return out;
}

}  // namespace ferry::agent
