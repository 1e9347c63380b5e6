// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "hbone/client.h"

#include "absl/strings/str_cat.h"
#include "hbone/baggage.h"
#include "hbone/resume.h"

namespace ferry::hbone {
namespace {

nghttp2_nv header(std::string_view name, std::string_view value) {
  return {const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
          const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())), name.size(),
          value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

absl::StatusOr<std::unique_ptr<HboneClient>> HboneClient::create(
    std::shared_ptr<const tls::TlsContext> ctx, std::optional<tls::SpiffeId> expected_peer,
    HboneSettings settings) {
  absl::StatusOr<std::unique_ptr<tls::TlsSession>> tls =
      tls::TlsSession::create(std::move(ctx), tls::TlsRole::kClient, std::move(expected_peer));
  if (!tls.ok()) {
    return tls.status();
  }
  std::unique_ptr<HboneClient> client(new HboneClient(std::move(*tls), settings, false));
  if (absl::Status s = client->initSession(); !s.ok()) {
    return s;
  }
  if (absl::Status s = client->tls_->handshake(); !s.ok()) {
    return s;
  }
  return client;
}

absl::StatusOr<StreamId> HboneClient::openStream(const Authority& target, std::string_view baggage,
                                                 std::string_view resume) {
  absl::StatusOr<StreamId> id = openStreamVerbatim(target.toString(), baggage, resume);
  if (id.ok()) {
    if (Stream* s = find(*id)) {
      s->authority = target;
    }
  }
  return id;
}

absl::StatusOr<StreamId> HboneClient::openStreamVerbatim(std::string authority,
                                                         std::string_view baggage,
                                                         std::string_view resume) {
  if (failed_ || peer_gone_) {
    return absl::UnavailableError("HBONE connection is closed");
  }
  if (goaway_received_) {
    return absl::UnavailableError("HBONE peer is draining (GOAWAY); use another connection");
  }
  auto stream = std::make_unique<Stream>();
  stream->authority_text = std::move(authority);
  nghttp2_nv nva[4] = {header(":method", "CONNECT"), header(":authority", stream->authority_text)};
  size_t count = 2;
  if (!baggage.empty()) {
    nva[count++] = header(kBaggageHeader, baggage);
  }
  if (!resume.empty()) {
    nva[count++] = header(kResumeHeader, resume);
  }
  nghttp2_data_provider provider = dataProvider();
  // nghttp2 copies the headers: `baggage` and `resume` need not outlive this call.
  int32_t id = nghttp2_submit_request(h2_, nullptr, nva, count, &provider, nullptr);
  if (id < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open HBONE stream: ", nghttp2_strerror(id)));
  }
  stream->id = id;
  stream->provider_attached = true;
  streams_[id] = std::move(stream);
  if (absl::Status s = queued(); !s.ok()) {
    return s;
  }
  return id;
}

bool HboneClient::acceptsNewStreams() const {
  if (failed_ || peer_gone_ || goaway_received_) {
    return false;
  }
  uint32_t limit =
      nghttp2_session_get_remote_settings(h2_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return streams_.size() < limit;
}

int HboneClient::responseStatus(StreamId id) const {
  const Stream* s = find(id);
  return s == nullptr ? 0 : s->status;
}

void HboneClient::onResponseHeaders(Stream& s) {
  emit({HboneEventType::kResponse, s.id, s.status});
  if (s.status / 100 != 2) {
    // Refused: nothing we queued will be wanted, and the stream must not linger half-open.
    s.send.clear();
    discardReceived(s);
    s.refused = true;
    nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_CANCEL);
  }
}

}  // namespace ferry::hbone
