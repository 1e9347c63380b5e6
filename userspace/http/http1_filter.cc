// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/http1_filter.h"

#include <span>

#include "http/authority.h"
#include "http/chars.h"
#include "http/status.h"

namespace ferry::http {

namespace {

void appendLocalReply(std::string& out, uint16_t status, std::string_view body, bool close,
                      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(reasonPhrase(status));
  out.append("\r\ncontent-length: ").append(std::to_string(body.size()));
  out.append("\r\ncontent-type: text/plain\r\n");
  for (const auto& [name, value] : headers) {
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (close) {
    out.append("connection: close\r\n");
  }
  out.append("\r\n").append(body);
}

}  // namespace

std::string_view denialBody(uint16_t status) {
  return status == 429 ? kRateLimitedBody : kDeniedBody;
}

namespace {

bool validFieldValue(std::string_view v) {
  for (char c : v) {
    if (!chars::is(c, chars::kFieldVchar) && !chars::isWs(c)) {
      return false;
    }
  }
  return v.empty() || (!chars::isWs(v.front()) && !chars::isWs(v.back()));
}

// Calls fn(element) for each element of a comma-separated list, whitespace trimmed.
template <typename Fn>
void forEachElement(std::string_view value, Fn fn) {
  size_t i = 0;
  while (i <= value.size()) {
    size_t comma = value.find(',', i);
    std::string_view e = value.substr(i, comma == std::string_view::npos ? value.npos : comma - i);
    while (!e.empty() && chars::isWs(e.front())) {
      e.remove_prefix(1);
    }
    while (!e.empty() && chars::isWs(e.back())) {
      e.remove_suffix(1);
    }
    fn(e);
    if (comma == std::string_view::npos) {
      break;
    }
    i = comma + 1;
  }
}

bool listsToken(std::string_view value, std::string_view token) {
  bool found = false;
  forEachElement(value, [&](std::string_view e) { found |= chars::equalsIgnoreCase(e, token); });
  return found;
}

// A GET whose Upgrade fields offer WebSocket and nothing else (RFC 6455 4.1): the app cannot
// switch to anything but WebSocket, so the request is authorized as the GET it is.
bool webSocketOnly(std::string_view method, std::span<const Header> headers) {
  if (method != "GET") {
    return false;
  }
  bool any = false, only = true;
  for (const Header& h : headers) {
    if (!chars::equalsIgnoreCase(h.name, "upgrade")) {
      continue;
    }
    forEachElement(h.value, [&](std::string_view e) {
      if (!e.empty()) {
        any = true;
        only &= chars::equalsIgnoreCase(e, "websocket");
      }
    });
  }
  return any && only;
}

}  // namespace

Http1Filter::Http1Filter(Config config, Authorizer authorize, RequestHeaderHook hook)
    : config_(config),
      authorize_(std::move(authorize)),
      hook_(std::move(hook)),
      req_(Http1Parser::Kind::kRequest, config.limits),
      resp_(Http1Parser::Kind::kResponse, config.limits) {}

bool Http1Filter::paused() const {
  if (closed_ || stop_reading_ || tunnel_) {
    return true;
  }
  // Pauses only fall between requests: a body in progress is always drained.
  return req_.idle() && (awaiting_switch_ || pending_.size() >= config_.max_pending_requests);
}

void Http1Filter::onDownstreamData(std::string_view data, FilterOutput& out) {
  if (closed_) {
    return;
  }
  if (tunnel_) {
    out.to_upstream.append(data);
    return;
  }
  if (stop_reading_) {
    return;
  }
  if (held_.empty()) {
    runDownstream(data, out);
    if (!data.empty() && !stop_reading_ && !closed_) {
      held_.append(data);
    }
    return;
  }
  held_.append(data);
  resumeDownstream(out);
}

void Http1Filter::resumeDownstream(FilterOutput& out) {
  if (held_.empty() || paused()) {
    return;
  }
  std::string_view in(held_);
  runDownstream(in, out);
  if (stop_reading_ || closed_) {
    held_.clear();
  } else {
    held_.erase(0, held_.size() - in.size());
  }
}

void Http1Filter::runDownstream(std::string_view& in, FilterOutput& out) {
  while (!paused()) {
    auto ev = req_.next(in);
    switch (ev.type) {
      case Http1Parser::Event::Type::kNeedMore:
        return;
      case Http1Parser::Event::Type::kHead:
        onRequestHead(out);
        break;
      case Http1Parser::Event::Type::kBody:
        if (forward_body_) {
          out.to_upstream.append(ev.data);
          pending_.back().record.request_body_bytes += ev.payload;
        }
        break;
      case Http1Parser::Event::Type::kMessageComplete:
        onRequestComplete();
        break;
      case Http1Parser::Event::Type::kError:
        rejectRequest(req_.error().status, req_.error().reason, out);
        return;
    }
  }
}

void Http1Filter::onRequestHead(FilterOutput& out) {
  const MessageHead& head = req_.head();
  auto target = parseRequestTarget(head.method, head.target, config_.path);
  if (!target.ok()) {
    last_error_ = std::string(target.status().message());
    rejectRequest(400, nullptr, out);
    return;
  }
  auto authority = requestAuthority(head, *target);
  if (!authority.ok()) {
    last_error_ = std::string(authority.status().message());
    rejectRequest(400, nullptr, out);
    return;
  }
  authority_ = *std::move(authority);
  // Host is forwarded as the authority policy matches, whatever the client sent.
  fieldsWithAuthority(head.headers, authority_, view_headers_);
  bool upgrade = head.upgrade;
  bool strip_h2c = false;
  bool underscore = false;
  for (const Header& h : view_headers_) {
    strip_h2c |= chars::equalsIgnoreCase(h.name, "upgrade") && listsToken(h.value, "h2c");
    underscore |= h.name.find('_') != std::string_view::npos;
  }
  if (underscore && config_.underscores == Config::Underscores::kReject) {
    rejectRequest(400, "underscore in header field name", out);
    return;
  }
  std::erase_if(view_headers_, [&](const Header& h) {
    return (config_.underscores == Config::Underscores::kDrop &&
            h.name.find('_') != std::string_view::npos) ||
           (strip_h2c && (chars::equalsIgnoreCase(h.name, "upgrade") ||
                          chars::equalsIgnoreCase(h.name, "http2-settings")));
  });
  if (strip_h2c) {
    upgrade = false;
  }
  RequestView view;
  view.protocol = head.version_minor == 0 ? HttpProtocol::kHttp10 : HttpProtocol::kHttp11;
  view.method = head.method;
  view.path = target->path;
  view.query = target->query;
  view.authority = authority_;
  view.headers = view_headers_;
  if (head.method == "CONNECT") {
    view.tunnel = Tunnel::kConnect;
  } else if (upgrade) {
    view.tunnel = webSocketOnly(head.method, view_headers_) ? Tunnel::kWebSocket : Tunnel::kUpgrade;
  }
  if (auto ct = view.header("content-type")) {
    view.grpc = ct->substr(0, 16) == "application/grpc";
  }
  AuthzDecision decision = authorize_(view);

  Pending p;
  p.head_request = head.method == "HEAD";
  p.connect_request = head.method == "CONNECT";
  p.upgrade = upgrade || p.connect_request;
  current_upgrade_ = p.upgrade;
  current_last_ = !head.keep_alive;
  if (record_sink_) {
    p.started = config_.now();
    p.record.method = std::string(head.method);
    p.record.path = target->path;
    p.record.authority = authority_;
    p.record.authorized = true;
    p.record.allowed = decision.allow;
    p.record.policy = std::move(decision.policy);
    p.record.rule = std::move(decision.rule);
    p.record.reason = std::move(decision.reason);
    p.record.grpc = view.grpc;
    p.record.traceparent = view.headerJoined("traceparent").value_or("");
  }
  if (decision.allow) {
    ++stats_.allowed;
    p.kind = Pending::Kind::kForwarded;
    p.close_after = !head.keep_alive;
    // CONNECT's target is its authority: forwarded in the normal form policy matched.
    const std::string forwarded_target =
        target->form == RequestTarget::Form::kAuthority ? authority_ : target->forwarded();
    p.record.forwarded_traceparent = serializeRequest(view, forwarded_target, decision.edits, out);
    forward_body_ = true;
    pending_.push_back(std::move(p));
    return;
  }
  ++stats_.denied;
  p.kind = Pending::Kind::kDenied;
  p.deny_status = decision.status;
  p.deny_body = std::string(denialBody(decision));
  p.reply_headers = std::move(decision.reply_headers);
  p.record.response_flags = std::move(decision.response_flags);
  const bool has_body = head.framing != BodyFraming::kNone;
  // A client waiting for 100-continue may or may not send the body after a final status
  // (RFC 9110 10.1.1), and a client switching protocols may already be sending the new one:
  // in both cases the next byte cannot be trusted to start a request, so close.
  p.close_after = !head.keep_alive || (head.expect_continue && has_body) || p.upgrade;
  forward_body_ = false;
  if (p.close_after) {
    current_last_ = true;
  }
  pending_.push_back(std::move(p));
  flushLocalReplies(out);
}

std::string Http1Filter::serializeRequest(const RequestView& view, std::string_view target,
                                          const HeaderEdits& decided, FilterOutput& out) {
  edits_.clear();
  if (!decided.empty()) {
    edits_.append(decided);
  }
  if (hook_) {
    hook_(view, edits_);
  }
  const MessageHead& head = req_.head();
  std::string& o = out.to_upstream;
  // One allocation for the head, not one per doubling as it is appended.
  size_t bytes = head.method.size() + target.size() + 16;
  for (const Header& h : view_headers_) {
    bytes += h.name.size() + h.value.size() + 4;
  }
  for (const auto& [name, value] : edits_.additions()) {
    bytes += name.size() + value.size() + 4;
  }
  o.reserve(o.size() + bytes);
  o.append(head.method).append(" ").append(target);
  o.append(head.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const Header& h : view_headers_) {
    if (!edits_.empty() && edits_.removes(h.name)) {
      continue;
    }
    o.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  std::string traceparent;
  for (const auto& [name, value] : edits_.additions()) {
    // A hook must not be able to inject framing or break the head.
    if (!chars::isToken(name) || !validFieldValue(value) ||
        chars::equalsIgnoreCase(name, "content-length") ||
        chars::equalsIgnoreCase(name, "transfer-encoding") ||
        chars::equalsIgnoreCase(name, "host")) {
      continue;
    }
    if (chars::equalsIgnoreCase(name, "traceparent")) {
      traceparent = value;
    }
    o.append(name).append(": ").append(value).append("\r\n");
  }
  o.append("\r\n");
  return traceparent;
}

void Http1Filter::onRequestComplete() {
  forward_body_ = false;
  const bool forwarded = !pending_.empty() && pending_.back().kind == Pending::Kind::kForwarded;
  if (current_upgrade_ && forwarded) {
    awaiting_switch_ = true;
  }
  if (current_last_) {
    stop_reading_ = true;
  }
  current_upgrade_ = current_last_ = false;
}

void Http1Filter::rejectRequest(uint16_t status, const char* reason, FilterOutput& out) {
  ++stats_.rejected;
  if (reason != nullptr) {
    last_error_ = reason;
  }
  // A request whose head was already forwarded cannot be finished: the app is left waiting
  // for body bytes that will never come, so its side is shut down too.
  if (forward_body_) {
    pending_.pop_back();
    out.shutdown_upstream = true;
  }
  forward_body_ = false;
  stop_reading_ = true;
  Pending p;
  p.kind = Pending::Kind::kError;
  p.error_status = status;
  if (record_sink_) {
    p.started = config_.now();
  }
  p.close_after = true;
  pending_.push_back(std::move(p));
  flushLocalReplies(out);
}

void Http1Filter::flushLocalReplies(FilterOutput& out) {
  while (!closed_ && !pending_.empty() && pending_.front().kind != Pending::Kind::kForwarded) {
    Pending& p = pending_.front();
    if (p.kind == Pending::Kind::kDenied) {
      appendLocalReply(out.to_downstream, p.deny_status, p.deny_body, p.close_after,
                       p.reply_headers);
      p.record.status = p.deny_status;
      p.record.response_body_bytes = p.deny_body.size();
    } else {
      appendLocalReply(out.to_downstream, p.error_status, reasonPhrase(p.error_status), true);
      p.record.status = p.error_status;
      p.record.response_body_bytes = std::string_view(reasonPhrase(p.error_status)).size();
    }
    p.record.local_reply = true;
    emitRecord(p);
    const bool close = p.close_after;
    pending_.erase(pending_.begin());
    if (close) {
      closeNow(out);
      return;
    }
  }
}

void Http1Filter::emitRecord(Pending& p) {
  if (record_sink_) {
    p.record.duration = config_.now() - p.started;
    record_sink_(p.record);
  }
}

void Http1Filter::closeNow(FilterOutput& out) {
  closed_ = true;
  out.close = true;
  held_.clear();
  pending_.clear();
}

void Http1Filter::onUpstreamData(std::string_view data, FilterOutput& out) {
  if (closed_) {
    return;
  }
  if (tunnel_) {
    out.to_downstream.append(data);
    return;
  }
  std::string_view in = data;
  while (!closed_ && !tunnel_) {
    if (!resp_active_) {
      if (in.empty()) {
        return;
      }
      if (pending_.empty() || pending_.front().kind != Pending::Kind::kForwarded) {
        upstreamFailed("response without a request", out);
        return;
      }
      resp_.setRequestContext(pending_.front().head_request, pending_.front().connect_request);
      resp_active_ = true;
      resp_started_ = false;
      switching_ = false;
    }
    auto ev = resp_.next(in);
    switch (ev.type) {
      case Http1Parser::Event::Type::kNeedMore:
        return;
      case Http1Parser::Event::Type::kHead: {
        const MessageHead& h = resp_.head();
        const Pending& front = pending_.front();
        if (h.status == 101 && !(front.upgrade && !front.connect_request)) {
          upstreamFailed("101 Switching Protocols without an Upgrade request", out);
          return;
        }
        switching_ = h.status == 101 || h.framing == BodyFraming::kTunnel;
        resp_interim_ = h.status < 200 && h.status != 101;
        out.to_downstream.append(resp_.rawHead());
        resp_started_ = true;
        if (h.status >= 200 || h.status == 101) {
          pending_.front().record.status = static_cast<uint16_t>(h.status);
          if (!h.keep_alive) {
            pending_.front().close_after = true;
          }
        }
        break;
      }
      case Http1Parser::Event::Type::kBody:
        out.to_downstream.append(ev.data);
        pending_.front().record.response_body_bytes += ev.payload;
        break;
      case Http1Parser::Event::Type::kMessageComplete: {
        resp_active_ = false;
        if (switching_) {
          ++stats_.responses;
          emitRecord(pending_.front());
          pending_.erase(pending_.begin());
          tunnel_ = true;
          awaiting_switch_ = false;
          out.to_downstream.append(in);
          out.to_upstream.append(held_);
          held_.clear();
          return;
        }
        finishResponse(out);
        break;
      }
      case Http1Parser::Event::Type::kError:
        upstreamFailed(resp_.error().reason, out);
        return;
    }
  }
}

void Http1Filter::finishResponse(FilterOutput& out) {
  if (resp_interim_) {
    return;  // 1xx: the final response to the same request follows
  }
  Pending& front = pending_.front();
  ++stats_.responses;
  emitRecord(front);
  const bool was_switch_request = front.upgrade;
  const bool close = front.close_after;
  pending_.erase(pending_.begin());
  if (close) {
    closeNow(out);
    return;
  }
  if (was_switch_request) {
    awaiting_switch_ = false;  // the app declined: the held bytes are HTTP again
  }
  flushLocalReplies(out);
  resumeDownstream(out);
  maybeCloseAtEof(out);
}

void Http1Filter::maybeCloseAtEof(FilterOutput& out) {
  if (downstream_eof_ && !closed_ && pending_.empty() && held_.empty()) {
    closeNow(out);
  }
}

void Http1Filter::upstreamFailed(const char* reason, FilterOutput& out) {
  last_error_ = reason;
  if (resp_active_ && !resp_started_ && !pending_.empty() &&
      pending_.front().kind == Pending::Kind::kForwarded) {
    appendLocalReply(out.to_downstream, 502, reasonPhrase(502), true);
    pending_.front().record.status = 502;
    pending_.front().record.response_body_bytes = std::string_view(reasonPhrase(502)).size();
    pending_.front().record.local_reply = true;
    emitRecord(pending_.front());
  }
  closeNow(out);
}

void Http1Filter::onUpstreamEof(FilterOutput& out) {
  if (closed_) {
    return;
  }
  if (tunnel_) {
    out.shutdown_downstream = true;
    upstream_eof_ = true;
    if (downstream_eof_) {
      closeNow(out);
    }
    return;
  }
  auto ev = resp_.finish();
  if (ev.type == Http1Parser::Event::Type::kMessageComplete && resp_active_) {
    resp_active_ = false;
    ++stats_.responses;
    emitRecord(pending_.front());
    pending_.erase(pending_.begin());
    // Later requests can no longer be answered by this app connection.
    closeNow(out);
    return;
  }
  if (pending_.empty() || pending_.front().kind != Pending::Kind::kForwarded) {
    flushLocalReplies(out);
    closeNow(out);
    return;
  }
  if (!resp_active_) {
    resp_active_ = true;  // a request was waiting: answer it with 502
    resp_started_ = false;
  }
  upstreamFailed("upstream closed before responding", out);
}

void Http1Filter::onDownstreamEof(FilterOutput& out) {
  if (closed_) {
    return;
  }
  downstream_eof_ = true;
  if (tunnel_) {
    out.shutdown_upstream = true;
    if (upstream_eof_) {
      closeNow(out);
    }
    return;
  }
  if (!stop_reading_ && !req_.idle()) {
    // The client stopped mid-request: nothing more can be answered.
    if (forward_body_) {
      out.shutdown_upstream = true;
    }
    closeNow(out);
    return;
  }
  maybeCloseAtEof(out);
}

}  // namespace ferry::http
