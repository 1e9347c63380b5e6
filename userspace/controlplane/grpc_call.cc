// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controlplane/grpc_call.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tls/x509.h"

namespace ferry::controlplane {
namespace {

constexpr size_t kPrefixBytes = 5;  // compressed flag + big-endian length
constexpr int32_t kWindowBytes = 16 << 20;
constexpr size_t kReadBytes = 16384;
constexpr size_t kKeptBufferBytes = 64 * 1024;
// A dead controller is found in about a minute: keepalive probes after 30 s idle, 3 x 10 s.
constexpr int kKeepIdleSeconds = 30;
constexpr int kKeepIntervalSeconds = 10;
constexpr int kKeepCount = 3;
constexpr unsigned kUserTimeoutMs = 60'000;

// host:port or [v6]:port.
absl::StatusOr<std::pair<std::string, std::string>> splitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("controller address \"", address, "\" is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::pair{host, address.substr(colon + 1)};
}

int remainingMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) {
    return -1;
  }
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30));
}

nghttp2_nv header(const char* name, const std::string& value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), std::strlen(name),
          value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

absl::Status grpcStatus(int code, const std::string& message) {
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(absl::StrCat("grpc-status ", code, ": ", message));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

// The call's HTTP/2 stream: nghttp2 callbacks fill it, next() drains it.
struct GrpcCall::Session {
  nghttp2_session* h2 = nullptr;
  int32_t stream_id = -1;
  std::string request;  // framed
  size_t request_sent = 0;
  std::string received;  // DATA bytes; messages are cut from the front
  size_t received_used = 0;
  std::deque<std::string> messages;
  int http_status = 0;
  std::optional<int> grpc_status;
  std::string grpc_message;
  bool closed = false;
  uint32_t reset_code = 0;
  absl::Status error;  // a protocol error of ours (oversized or compressed message)

  ~Session() { nghttp2_session_del(h2); }

  void cutMessages() {
    while (error.ok() && received.size() - received_used >= kPrefixBytes) {
      const auto* p = reinterpret_cast<const uint8_t*>(received.data() + received_used);
      const size_t length =
          (size_t{p[1]} << 24) | (size_t{p[2]} << 16) | (size_t{p[3]} << 8) | p[4];
      if (p[0] != 0) {
        error = absl::UnimplementedError("controller sent a compressed message");
      } else if (length > kMaxMessageBytes) {
        error = absl::ResourceExhaustedError(
            absl::StrCat("controller message of ", length, " bytes is over the limit"));
      } else if (received.size() - received_used >= kPrefixBytes + length) {
        if (received_used == 0 && received.size() == kPrefixBytes + length) {
          // Exactly one message (a snapshot): hand the buffer over instead of copying it.
          received.erase(0, kPrefixBytes);
          messages.push_back(std::move(received));
          received = std::string();
          return;
        }
        messages.emplace_back(received, received_used + kPrefixBytes, length);
        received_used += kPrefixBytes + length;
        continue;
      }
      break;
    }
    received.erase(0, received_used);
    received_used = 0;
    if (received.empty() && received.capacity() > kKeptBufferBytes) {
      received = std::string();  // a big snapshot must not stay pinned for the Watch's life
    }
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* s = static_cast<Session*>(user);
    if (frame->hd.stream_id != s->stream_id) {
      return 0;
    }
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string v(reinterpret_cast<const char*>(value), valuelen);
    int code = 0;
    if (n == ":status" && absl::SimpleAtoi(v, &code)) {
      s->http_status = code;
    } else if (n == "grpc-status" && absl::SimpleAtoi(v, &code)) {
      s->grpc_status = code;
    } else if (n == "grpc-message") {
      s->grpc_message = v;
    }
    return 0;
  }

  static int onData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                    void* user) {
    auto* s = static_cast<Session*>(user);
    if (stream_id == s->stream_id) {
      s->received.append(reinterpret_cast<const char*>(data), len);
      s->cutMessages();
    }
    return 0;
  }

  static int onClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
    auto* s = static_cast<Session*>(user);
    if (stream_id == s->stream_id) {
      s->closed = true;
      s->reset_code = error_code;
    }
    return 0;
  }

  static ssize_t readRequest(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                             uint32_t* flags, nghttp2_data_source*, void* user) {
    auto* s = static_cast<Session*>(user);
    const size_t n = std::min(length, s->request.size() - s->request_sent);
    std::memcpy(buf, s->request.data() + s->request_sent, n);
    s->request_sent += n;
    if (s->request_sent == s->request.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return static_cast<ssize_t>(n);
  }

  // How the stream ended, once closed.
  absl::Status outcome() const {
    if (!error.ok()) {
      return error;
    }
    if (grpc_status && *grpc_status == 0 && !received.empty()) {
      return absl::InternalError("controller ended the call inside a message");
    }
    if (grpc_status) {
      return grpcStatus(*grpc_status, grpc_message);
    }
    if (http_status != 200) {
      return absl::UnavailableError(absl::StrCat("controller answered HTTP ", http_status));
    }
    return absl::UnavailableError(absl::StrCat(
        "controller ended the call without a status", reset_code != 0 ? " (stream reset " : "",
        reset_code != 0 ? absl::StrCat(reset_code, ")") : ""));
  }
};

GrpcCall::~GrpcCall() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  ::close(cancel_fd_);
}

absl::StatusOr<std::unique_ptr<GrpcCall>> GrpcCall::create() {
  std::unique_ptr<GrpcCall> call(new GrpcCall());
  call->cancel_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (call->cancel_fd_ < 0) {
    return absl::ResourceExhaustedError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return call;
}

absl::Status GrpcCall::start(const GrpcTarget& target, const std::string& method_path,
                             const std::string& request, absl::Time deadline) {
  if (absl::Status s = handshake(target, deadline); !s.ok()) {
    return cancelled_.load() ? absl::CancelledError("call cancelled") : s;
  }
  return submit(target, method_path, request);
}

absl::StatusOr<std::string> GrpcCall::unaryAnswer(const std::string& method_path,
                                                  absl::Time deadline) {
  std::optional<std::string> answer = next(deadline);
  // Read on to the trailers: an answer counts only with an OK status after it.
  while (next(deadline)) {
    answer.reset();  // a second message: not a unary answer
  }
  if (!status_.ok()) {
    return status_;
  }
  if (!answer) {
    return absl::InternalError(absl::StrCat(method_path, ": not exactly one answer"));
  }
  return *std::move(answer);
}

absl::StatusOr<std::string> GrpcCall::unary(const GrpcTarget& target,
                                            const std::string& method_path,
                                            const std::string& request, absl::Time deadline) {
  auto call = create();
  if (!call.ok()) {
    return call.status();
  }
  if (absl::Status s = (*call)->start(target, method_path, request, deadline); !s.ok()) {
    return s;
  }
  return (*call)->unaryAnswer(method_path, deadline);
}

absl::Status GrpcCall::waitFor(short events, absl::Time deadline) {
  pollfd p[2] = {{fd_, events, 0}, {cancel_fd_, POLLIN, 0}};
  int n;
  do {
    n = ::poll(p, 2, remainingMs(deadline));
  } while (n < 0 && errno == EINTR);
  if (cancelled_.load()) {
    return absl::CancelledError("call cancelled");
  }
  if (n == 0) {
    return absl::DeadlineExceededError("controller call deadline passed");
  }
  return n < 0 ? absl::UnavailableError(absl::StrCat("poll: ", std::strerror(errno)))
               : absl::OkStatus();
}

absl::Status GrpcCall::connectTo(const std::string& address, absl::Time deadline) {
  auto parts = splitAddress(address);
  if (!parts.ok()) {
    return parts.status();
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(parts->first.c_str(), parts->second.c_str(), &hints, &found);
      rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", address, ": ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
  size_t left = 0;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    ++left;
  }
  absl::Status connected = absl::UnavailableError("no address for " + address);
  for (addrinfo* a = found; a != nullptr; a = a->ai_next, --left) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      connected = absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
      continue;
    }
    if (::connect(fd_, a->ai_addr, a->ai_addrlen) == 0) {
      return absl::OkStatus();
    }
    if (errno != EINPROGRESS) {
      connected =
          absl::UnavailableError(absl::StrCat("connect ", address, ": ", std::strerror(errno)));
      continue;
    }
    // Each address gets its share of what is left, so one that drops packets cannot use it up.
    const absl::Time now = absl::Now();
    const absl::Time share =
        deadline == absl::InfiniteFuture() ? deadline : now + (deadline - now) / left;
    connected = waitFor(POLLOUT, share);
    if (connected.code() == absl::StatusCode::kCancelled) {
      return connected;
    }
    int error = 0;
    socklen_t len = sizeof(error);
    if (connected.ok() && ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
      error = errno;
    }
    if (connected.ok() && error != 0) {
      connected =
          absl::UnavailableError(absl::StrCat("connect ", address, ": ", std::strerror(error)));
    }
    if (connected.ok()) {
      return connected;
    }
  }
  return connected;
}

absl::Status GrpcCall::writeAll(const uint8_t* data, size_t size, absl::Time deadline) {
  // SIGPIPE held back on this thread while writing, and one raised by it taken away unseen: a
  // peer that went away is an error for the call, never a signal for the process.
  sigset_t pipe, old;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe, &old);
  absl::Status result = absl::OkStatus();
  size_t done = 0;
  while (done < size) {
    size_t wrote = 0;
    ERR_clear_error();
    if (SSL_write_ex(ssl_.get(), data + done, size - done, &wrote) == 1) {
      done += wrote;
      continue;
    }
    const int err = SSL_get_error(ssl_.get(), 0);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      result = absl::UnavailableError(
          absl::StrCat("controller connection broke while sending: ", tls::drainOpensslErrors()));
      break;
    }
    result = waitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
    if (!result.ok()) {
      break;
    }
  }
  if (!was_pending) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe, nullptr, &zero) > 0) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return result;
}

absl::Status GrpcCall::handshake(const GrpcTarget& target, absl::Time deadline) {
  if (absl::Status s = connectTo(target.address, deadline); !s.ok()) {
    return s;
  }
  const int on = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, &kKeepIdleSeconds, sizeof(kKeepIdleSeconds));
  ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, &kKeepIntervalSeconds,
               sizeof(kKeepIntervalSeconds));
  ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, &kKeepCount, sizeof(kKeepCount));
  ::setsockopt(fd_, IPPROTO_TCP, TCP_USER_TIMEOUT, &kUserTimeoutMs, sizeof(kUserTimeoutMs));

  ctx_.reset(SSL_CTX_new(TLS_client_method()));
  if (!ctx_ || SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_3_VERSION) != 1) {
    return tls::opensslError("controller TLS context");
  }
  SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
  auto roots = tls::certChainFromPem(target.roots_pem);
  if (!roots.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("controller roots: ", roots.status().message()));
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx_.get());
  for (const auto& root : *roots) {
    if (X509_STORE_add_cert(store, root.get()) != 1) {
      return tls::opensslError("controller roots");
    }
  }
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(ctx_.get(), kAlpn, sizeof(kAlpn)) != 0) {
    return tls::opensslError("ALPN");
  }
  if (!target.cert_pem.empty()) {
    auto chain = tls::certChainFromPem(target.cert_pem);
    auto key = tls::keyFromPem(target.key_pem);
    if (!chain.ok() || !key.ok()) {
      return absl::InvalidArgumentError("node certificate or key does not parse");
    }
    if (SSL_CTX_use_certificate(ctx_.get(), (*chain)[0].get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx_.get(), key->get()) != 1) {
      return tls::opensslError("node certificate");
    }
    for (size_t i = 1; i < chain->size(); ++i) {
      if (SSL_CTX_add1_chain_cert(ctx_.get(), (*chain)[i].get()) != 1) {
        return tls::opensslError("node certificate chain");
      }
    }
  }
  ssl_.reset(SSL_new(ctx_.get()));
  if (!ssl_ || SSL_set_fd(ssl_.get(), fd_) != 1) {
    return tls::opensslError("controller TLS connection");
  }
  while (true) {
    ERR_clear_error();
    const int rc = SSL_connect(ssl_.get());
    if (rc == 1) {
      break;
    }
    const int err = SSL_get_error(ssl_.get(), rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      return absl::UnavailableError(absl::StrCat(
          "TLS handshake with the controller failed: ", tls::drainOpensslErrors(),
          " (verify: ", X509_verify_cert_error_string(SSL_get_verify_result(ssl_.get())), ")"));
    }
    if (absl::Status s = waitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        !s.ok()) {
      return s;
    }
  }
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_.get(), &alpn, &alpn_len);
  if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
    return absl::UnavailableError("controller did not select HTTP/2 (ALPN h2)");
  }
  // The chain was verified during the handshake; the identity is the URI SAN.
  tls::UniqueX509 peer(SSL_get1_peer_certificate(ssl_.get()));
  auto info = peer ? tls::inspectCert(peer.get()) : absl::UnavailableError("no certificate");
  if (!info.ok() || std::find(info->uri_sans.begin(), info->uri_sans.end(),
                              target.controller_identity) == info->uri_sans.end()) {
    return absl::UnauthenticatedError(
        absl::StrCat("controller is not ", target.controller_identity));
  }
  return absl::OkStatus();
}

absl::Status GrpcCall::submit(const GrpcTarget& target, const std::string& method_path,
                              const std::string& request) {
  session_ = std::make_unique<Session>();
  Session& s = *session_;
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &Session::onHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Session::onData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Session::onClose);
  const int rc = nghttp2_session_client_new(&s.h2, cbs, &s);
  nghttp2_session_callbacks_del(cbs);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("nghttp2: ", nghttp2_strerror(rc)));
  }
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kWindowBytes}};
  nghttp2_submit_settings(s.h2, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(s.h2, NGHTTP2_FLAG_NONE, 0, kWindowBytes);

  s.request.resize(kPrefixBytes);
  const uint32_t length = static_cast<uint32_t>(request.size());
  s.request[0] = 0;
  for (int i = 0; i < 4; ++i) {
    s.request[1 + i] = static_cast<char>((length >> (24 - 8 * i)) & 0xff);
  }
  s.request += request;
  const std::string post = "POST", https = "https", grpc = "application/grpc",
                    trailers = "trailers", agent = "ferry-agent";
  const nghttp2_nv headers[] = {header(":method", post),      header(":scheme", https),
                                header(":path", method_path), header(":authority", target.address),
                                header("content-type", grpc), header("te", trailers),
                                header("user-agent", agent)};
  nghttp2_data_provider body{};
  body.read_callback = &Session::readRequest;
  s.stream_id = nghttp2_submit_request(s.h2, nullptr, headers, std::size(headers), &body, nullptr);
  if (s.stream_id < 0) {
    return absl::InternalError(absl::StrCat("nghttp2: ", nghttp2_strerror(s.stream_id)));
  }
  return absl::OkStatus();
}

absl::Status GrpcCall::pump(absl::Time deadline) {
  const uint8_t* out = nullptr;
  ssize_t n;
  while ((n = nghttp2_session_mem_send(session_->h2, &out)) > 0) {
    if (absl::Status s = writeAll(out, static_cast<size_t>(n), deadline); !s.ok()) {
      return s;
    }
  }
  if (n < 0) {
    return absl::InternalError(absl::StrCat("nghttp2: ", nghttp2_strerror(static_cast<int>(n))));
  }
  uint8_t buf[kReadBytes];
  size_t got = 0;
  while (true) {
    ERR_clear_error();
    if (SSL_read_ex(ssl_.get(), buf, sizeof(buf), &got) == 1) {
      break;
    }
    const int err = SSL_get_error(ssl_.get(), 0);
    if (cancelled_.load()) {
      return absl::CancelledError("call cancelled");
    }
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      const std::string why = tls::drainOpensslErrors();
      return absl::UnavailableError(
          absl::StrCat("controller closed the connection", why.empty() ? "" : ": ", why));
    }
    if (absl::Status s = waitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        !s.ok()) {
      return s;
    }
  }
  const ssize_t used = nghttp2_session_mem_recv(session_->h2, buf, got);
  if (used < 0) {
    return absl::UnavailableError(
        absl::StrCat("HTTP/2 from the controller: ", nghttp2_strerror(static_cast<int>(used))));
  }
  return absl::OkStatus();
}

void GrpcCall::finish(absl::Status status) {
  ended_ = true;
  status_ = std::move(status);
}

std::optional<std::string> GrpcCall::next(absl::Time deadline) {
  while (true) {
    if (cancelled_.load() && !ended_) {
      finish(absl::CancelledError("call cancelled"));
    }
    if (ended_) {
      return std::nullopt;
    }
    if (!session_->messages.empty()) {
      std::string m = std::move(session_->messages.front());
      session_->messages.pop_front();
      return m;
    }
    if (!session_->error.ok() || session_->closed) {
      finish(session_->outcome());
      continue;
    }
    if (absl::Status s = pump(deadline); !s.ok()) {
      finish(cancelled_.load() ? absl::CancelledError("call cancelled") : s);
    }
  }
}

void GrpcCall::cancel() {
  cancelled_.store(true);
  const uint64_t one = 1;
  (void)!::write(cancel_fd_, &one, sizeof(one));
}

}  // namespace ferry::controlplane
