// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// One routed h2 stream (issue 22 point 1): see h2_routed_stream.h.
#include "agent/http/h2_routed_stream.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/http/http_messages.h"
#include "agent/http/http_outbound.h"
#include "agent/http/route_decision.h"
#include "agent/http/upstream_pool.h"
#include "agent/state/route_state.h"
#include "agent/telemetry/telemetry.h"
#include "http/http1_parser.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

std::unique_ptr<http::Http1Parser> parsedHead(std::string_view text, http::Http1Parser::Kind kind) {
  auto parser = std::make_unique<http::Http1Parser>(kind);
  if (kind == http::Http1Parser::Kind::kResponse) {
    parser->setRequestContext(false, false);
  }
  std::string_view input = text;
  if (parser->next(input).type != http::Http1Parser::Event::Type::kHead) {
    return nullptr;
  }
  return parser;
}

int grpcStatusOf(const H2Fields& fields) {
  for (const auto& [n, v] : fields) {
    int status = 0;
    if (n == "grpc-status" && absl::SimpleAtoi(v, &status)) {
      return status;
    }
  }
  return -1;
}

}  // namespace

// ---- H2RoutedStream ----------------------------------------------------------------------------

H2RoutedStream::H2RoutedStream(H2ClientSide& owner, int32_t id)
    : owner_(owner), id_(id), clock_(owner.ctx().loop), attempts_(clock_, *this, owner.ctx().rng) {}

void H2RoutedStream::header(std::string name, std::string value) {
  if (head_done_) {
    request_trailers_.emplace_back(std::move(name), std::move(value));
    return;
  }
  if (name == ":method") {
    method_ = std::move(value);
  } else if (name == ":scheme") {
    scheme_ = std::move(value);
  } else if (name == ":authority") {
    authority_ = std::move(value);
  } else if (name == ":path") {
    path_ = std::move(value);
  } else if (name == "te") {
    te_trailers_ = value == "trailers";  // nghttp2 allows no other value
  } else if (!name.starts_with(":")) {
    fields_.emplace_back(std::move(name), std::move(value));
  }
}

void H2RoutedStream::headersDone(bool end_stream) {
  if (!head_done_) {
    head_done_ = true;
    body_complete_ = end_stream;
    route();
    return;
  }
  bodyDone();  // trailers end the request
}

void H2RoutedStream::body(std::string_view data) {
  x_.request_bytes += data.size();
  if (finished_ || !x_.forwarding) {
    nghttp2_session_consume_stream(owner_.session(), id_, data.size());  // answered: dropped
    return;
  }
  body_.append(data);
  if (!overflow_ && base_ + body_.size() > kMaxRetryBodyBytes) {
    overflow_ = true;  // too big to keep for a retry: this try is the only one
  }
  if (up_ != nullptr) {
    up_->resume(up_id_);
    up_->flush();
  }
}

void H2RoutedStream::bodyDone() {
  body_complete_ = true;
  if (up_ != nullptr) {
    up_->resume(up_id_);
    up_->flush();
  }
}

// The request as an HTTP/1.1 head through the strict parser, so that the decision (matches,
// filters, target rules) is exactly the one HTTP/1.1 requests get.
void H2RoutedStream::route() {
  WorkerContext& ctx = owner_.ctx();
  x_.active = true;
  x_.started = std::chrono::steady_clock::now();
  x_.method = method_;
  x_.path = path_;
  x_.view = ctx.shared.routing->current();
  x_.state = ctx.shared.workloads->current();
  for (const auto& [n, v] : fields_) {
    if (n == "content-type" && v.starts_with("application/grpc")) {
      x_.protocol = "grpc";
    }
  }
  std::string text =
      absl::StrCat(method_, " ", method_ == "CONNECT" ? authority_ : path_, " HTTP/1.1\r\n");
  bool host = false;
  for (const auto& [n, v] : fields_) {
    host = host || n == "host";
    absl::StrAppend(&text, n, ": ", v, "\r\n");
  }
  if (!host && !authority_.empty()) {
    absl::StrAppend(&text, "host: ", authority_, "\r\n");
  }
  if (method_ == "CONNECT") {
    absl::StrAppend(&text, "connection: upgrade\r\nupgrade: h2-connect\r\n");  // a tunnel: 501
  }
  text.append("\r\n");
  auto parsed = parsedHead(text, http::Http1Parser::Kind::kRequest);
  if (parsed == nullptr) {
    x_.route.authority = authority_;
    answer(400, "malformed request\n", "DPE");
    return;
  }
  Telemetry& telemetry = *ctx.shared.telemetry;
  x_.route =
      decideRoute(parsed->head(), {owner_.who().service, owner_.who().port}, *x_.view, ctx.rng,
                  telemetry.spanExporter() != nullptr ? &telemetry.sampler() : nullptr);
  RouteDecision& d = x_.route;
  d.countRequest();
  if (!d.forwarded()) {
    x_.flags = d.local.flags;
    if (!d.local.location.empty()) {
      respond(d.local.status, {{"location", d.local.location}, {"content-length", "0"}}, false);
      finishExchange();
      return;
    }
    answer(d.local.status, d.local.body, d.local.flags);
    return;
  }
  d.mirror.reset();  // not for h2 yet (h2_outbound.h)
  if (!forwardedFields(d.head)) {
    answer(400, "malformed request\n", "DPE");
    return;
  }
  x_.forwarding = true;
  attempts_.begin(d.cluster, d.attemptPolicy(x_.method), d.stats);
  attempts_.dispatch();  // at once: a stream's body flows while it is also kept for retries
}

// The forwarded HTTP/1.1 head (after the filters) as h2 fields.
bool H2RoutedStream::forwardedFields(std::string_view head) {
  auto parsed = parsedHead(head, http::Http1Parser::Kind::kRequest);
  if (parsed == nullptr) {
    return false;
  }
  const http::MessageHead& h = parsed->head();
  forwarded_ = {{":method", std::string(h.method)},
                {":scheme", scheme_},
                {":authority", std::string(h.host)},
                {":path", std::string(h.target)}};
  for (const http::Header& f : h.headers) {
    std::string name = absl::AsciiStrToLower(std::string(f.name));
    if (name != "host" && name != "transfer-encoding" && !hopByHopField(name)) {
      forwarded_.emplace_back(std::move(name), std::string(f.value));
    }
  }
  if (te_trailers_) {
    forwarded_.emplace_back("te", "trailers");  // gRPC servers ask for it
  }
  return true;
}

const char* H2RoutedStream::connect(const routing::EndpointRef& endpoint) {
  WorkerContext& ctx = owner_.ctx();
  const RoutedClient& who = owner_.who();
  const Destination dest = endpointDestination(*x_.state, endpoint);
  const std::string key =
      UpstreamPool::keyOf(x_.route.cluster_id, *who.pod, dest.ip, dest.port) + "|h2";
  auto up = h2UpstreamPool(ctx).get(key, who.pod, *x_.state, dest, who.source_ip);
  if (!up.ok()) {
    LOG_WARN_EVERY_SECOND("routed h2 from ", who.pod->info.name, ": ", up.status().ToString());
    return "upstream connect error or disconnect/reset before headers\n";
  }
  sent_ = base_;  // a retry sends the kept body again
  auto id = (*up)->submit(forwarded_, this);
  if (!id.ok()) {
    return "upstream connect error or disconnect/reset before headers\n";
  }
  up_ = *up;
  up_id_ = *id;
  up_->flush();
  return nullptr;
}

void H2RoutedStream::release(bool /*reusable: an h2 connection outlives its streams*/) {
  if (up_ != nullptr) {
    H2Upstream* up = std::exchange(up_, nullptr);
    up->cancel(std::exchange(up_id_, -1));
    up->flush();
  }
}

void H2RoutedStream::respond(int status, H2Fields fields, bool with_body) {
  if (responded_ || client_closed_) {
    return;
  }
  responded_ = true;
  x_.answered = status;
  fields.insert(fields.begin(), {":status", std::to_string(status)});
  std::vector<nghttp2_nv> nva = toNv(fields);
  nghttp2_data_provider provider{};
  provider.read_callback = [](nghttp2_session* session, int32_t id, uint8_t* buf, size_t room,
                              uint32_t* flags, nghttp2_data_source*, void*) -> ssize_t {
    auto* s = static_cast<H2RoutedStream*>(nghttp2_session_get_stream_user_data(session, id));
    if (s == nullptr) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return s->readResponse(buf, room, flags);
  };
  nghttp2_session_set_stream_user_data(owner_.session(), id_, this);
  nghttp2_submit_response(owner_.session(), id_, nva.data(), nva.size(),
                          with_body ? &provider : nullptr);
  owner_.flush();
}

ssize_t H2RoutedStream::readResponse(uint8_t* buf, size_t room, uint32_t* flags) {
  const size_t n = std::min(room, out_.size());
  if (n > 0) {
    std::memcpy(buf, out_.data(), n);
    out_.erase(0, n);
    if (up_ != nullptr) {
      up_->consume(up_id_, n);
    }
  }
  if (out_.empty() && out_end_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!response_trailers_.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      std::vector<nghttp2_nv> nva = toNv(response_trailers_);
      nghttp2_submit_trailer(owner_.session(), id_, nva.data(), nva.size());
    }
    return static_cast<ssize_t>(n);
  }
  return n > 0 ? static_cast<ssize_t>(n) : static_cast<ssize_t>(NGHTTP2_ERR_DEFERRED);
}

void H2RoutedStream::resumeClient() {
  if (!client_closed_ && responded_) {
    nghttp2_session_resume_data(owner_.session(), id_);
    owner_.flush();
  }
}

void H2RoutedStream::answer(int status, std::string_view text, const char* flags) {
  x_.flags = flags;
  if (!responded_) {
    x_.response_bytes = text.size();
    out_ = std::string(text);
    out_end_ = true;
    respond(status,
            {{"content-type", "text/plain"},
             {"content-length", std::to_string(text.size())},
             {"server", "ferry"}},
            true);
  }
  finishExchange();
}

void H2RoutedStream::reset() {
  if (!client_closed_) {
    nghttp2_submit_rst_stream(owner_.session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    owner_.flush();
  }
  finishExchange();
}

std::function<void()> H2RoutedStream::grantCallback() {
  EventLoop* loop = &owner_.ctx().loop;
  return [loop, alive = alive_, this] {
    loop->post([alive, this] {
      if (*alive && attempts_.granted()) {
        owner_.flush();
      }
    });
  };
}

void H2RoutedStream::wake() {
  owner_.flush();
}

long H2RoutedStream::upBody(uint8_t* buf, size_t room, bool* eof) {
  const size_t at = static_cast<size_t>(sent_ - base_);
  const size_t n = std::min(room, body_.size() - at);
  std::memcpy(buf, body_.data() + at, n);
  sent_ += n;
  if (sent_ > consumed_) {
    nghttp2_session_consume_stream(owner_.session(), id_, sent_ - consumed_);
    consumed_ = sent_;
    owner_.flush();  // the WINDOW_UPDATE
  }
  if (overflow_) {
    body_.erase(0, at + n);  // one try only: nothing is kept
    base_ = sent_;
  }
  if (sent_ - base_ == body_.size() && body_complete_) {
    *eof = true;
    return static_cast<long>(n);
  }
  return n > 0 ? static_cast<long>(n) : -1;
}

void H2RoutedStream::upHeaders(int status, H2Fields fields, bool end) {
  const int grpc = grpcStatusOf(fields);
  // keep_alive false: a retried answer's stream is reset, not read on (the connection stays).
  switch (attempts_.responseHead(status, false, false, end ? grpc : -1)) {
    case UpstreamAttempts::HeadVerdict::kDrain:  // not asked for (keep_alive false)
    case UpstreamAttempts::HeadVerdict::kRetried:
      return;
    case UpstreamAttempts::HeadVerdict::kForward:
      break;
  }
  if (grpc >= 0) {
    x_.grpc_status = grpc;  // a trailers-only answer
  }
  H2Fields out;
  const http::HeaderEdits& edits = x_.route.response_edits;
  for (auto& [n, v] : fields) {
    if (edits.empty() || !edits.removes(n)) {
      out.emplace_back(std::move(n), std::move(v));
    }
  }
  if (!edits.empty()) {
    // The additions as HTTP/1.1 writes them (names and values checked), then back to fields.
    http::MessageHead none;
    none.status = status;
    auto parsed =
        parsedHead(forwardedResponseHead(none, false, edits), http::Http1Parser::Kind::kResponse);
    if (parsed != nullptr) {
      for (const http::Header& f : parsed->head().headers) {
        out.emplace_back(absl::AsciiStrToLower(std::string(f.name)), std::string(f.value));
      }
    }
  }
  out_end_ = end;
  respond(status, std::move(out), !end);
}

void H2RoutedStream::upData(std::string_view data) {
  x_.response_bytes += data.size();
  out_.append(data);
  resumeClient();
}

void H2RoutedStream::upTrailers(H2Fields fields) {
  const int grpc = grpcStatusOf(fields);
  if (grpc >= 0) {
    x_.grpc_status = grpc;
  }
  response_trailers_ = std::move(fields);
}

void H2RoutedStream::upClosed(bool ended, uint32_t /*error*/, bool maybe_processed) {
  up_ = nullptr;  // the stream is gone: nothing to cancel
  up_id_ = -1;
  if (ended) {
    out_end_ = true;
    if (attempts_.responseComplete(true)) {
      resumeClient();
      finishExchange();
    }
    return;
  }
  attempts_.upstreamGone(maybe_processed);
  owner_.flush();
}

void H2RoutedStream::finishExchange() {
  if (finished_) {
    return;
  }
  finished_ = true;
  attempts_.finish();
  reportExchange(*owner_.ctx().shared.workloads, *owner_.ctx().shared.telemetry, owner_.who(), x_,
                 attempts_.endpoint());
  // The rest of the request body is no longer wanted.
  if (!body_complete_ && !client_closed_) {
    nghttp2_session_consume_stream(owner_.session(), id_, body_.size());
  }
}

void H2RoutedStream::clientClosed() {
  if (client_closed_) {
    return;
  }
  client_closed_ = true;
  if (!owner_.closed()) {
    nghttp2_session_set_stream_user_data(owner_.session(), id_, nullptr);
  }
  if (!finished_) {
    if (x_.answered == 0) {
      x_.flags = "DC";
    }
    finishExchange();
  }
  release(false);
  *alive_ = false;
  owner_.ctx().loop.deleteLater(std::unique_ptr<Deferred>(this));
}

}  // namespace ferry::agent
