// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "hbone/server.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "hbone/resume.h"

namespace ferry::hbone {

absl::StatusOr<std::unique_ptr<HboneServer>> HboneServer::create(
    std::shared_ptr<const tls::TlsContext> ctx, AcceptCallback accept, HboneSettings settings) {
  absl::StatusOr<std::unique_ptr<tls::TlsSession>> tls =
      tls::TlsSession::create(std::move(ctx), tls::TlsRole::kServer);
  if (!tls.ok()) {
    return tls.status();
  }
  std::unique_ptr<HboneServer> server(new HboneServer(std::move(*tls), settings, true));
  server->accept_ = std::move(accept);
  if (absl::Status s = server->initSession(); !s.ok()) {
    return s;
  }
  return server;
}

void HboneServer::onRequestHeaders(Stream& s) {
  if (s.method != "CONNECT") {
    answer(s, 405);  // HBONE tunnels only; nothing else is served here
    return;
  }
  absl::StatusOr<Authority> authority = Authority::parse(s.authority_text);
  if (!authority.ok()) {
    answer(s, 400);
    return;
  }
  s.authority = *authority;
  int status =
      accept_ ? accept_(StreamRequest{s.id, peer(), *s.authority, s.baggage, s.resume}) : 200;
  // The request was decided: what the baggage said is in the decision's report now, and the
  // stream, idle for as long as its app keeps it, need not hold its text (about 150 bytes).
  std::string().swap(s.baggage);
  if (status == kDeferDecision) {
    return;
  }
  answer(s, status);
}

void HboneServer::answer(Stream& s, int status) {
  if (status < 200 || status > 599) {
    status = 500;
  }
  std::string code = std::to_string(status);
  nghttp2_nv nva[] = {
      {const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(":status")),
       reinterpret_cast<uint8_t*>(code.data()), 7, code.size(), NGHTTP2_NV_FLAG_NONE},
      {const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(kResumeHeader.data())),
       reinterpret_cast<uint8_t*>(s.resume_answer.data()), kResumeHeader.size(),
       s.resume_answer.size(), NGHTTP2_NV_FLAG_NONE}};
  const size_t count = s.resume_answer.empty() ? 1 : 2;
  s.status = status;
  if (status == 200) {
    nghttp2_data_provider provider = dataProvider();
    s.provider_attached = true;
    nghttp2_submit_response(h2_, s.id, nva, count, &provider);
    emit({HboneEventType::kStreamOpened, s.id, 200});
    if (!s.recv.empty() || s.remote_ended) {
      emit({HboneEventType::kReadable, s.id});
    }
  } else {
    s.refused = true;
    s.send.clear();
    discardReceived(s);
    nghttp2_submit_response(h2_, s.id, nva, count, nullptr);
  }
}

absl::Status HboneServer::respond(StreamId id, int status) {
  Stream* s = find(id);
  if (s == nullptr) {
    return absl::NotFoundError(absl::StrCat("HBONE stream ", id, " is gone"));
  }
  if (s->status != 0 || s->refused) {
    return absl::FailedPreconditionError(absl::StrCat("HBONE stream ", id, " already answered"));
  }
  answer(*s, status);
  return queued();
}

void HboneServer::setResumeAnswer(StreamId id, std::string value) {
  if (Stream* s = find(id)) {
    s->resume_answer = std::move(value);
  }
}

const Authority* HboneServer::authority(StreamId id) const {
  const Stream* s = find(id);
  return s == nullptr || !s->authority ? nullptr : &*s->authority;
}

}  // namespace ferry::hbone
