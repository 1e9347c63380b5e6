// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The HTTP/2 filter's promise, fuzzed: whatever frames a client sends, what the filter sends the
// app is valid HTTP/2, every request in it has a normalized path that the policy (DENY /admin*)
// allowed, no field name with '_', and every request's record agrees with what happened to it.
//
// Input: control byte, then the client's frames (the connection preface is added, so inputs
// need not find it); an optional "\xff\xfe" separates them from app bytes fed back as the
// app's side of the connection.
#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "http/authority.h"
#include "http/http2_filter.h"

using namespace ferry::http;

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr std::string_view kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// The app's view: an nghttp2 server session that decodes what the filter forwarded.
struct AppDecoder {
  std::map<int32_t, std::map<std::string, std::string>> requests;

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* self = static_cast<AppDecoder*>(user);
    std::string n(reinterpret_cast<const char*>(name), namelen);
    FUZZ_CHECK(n.find('_') == std::string::npos);
    self->requests[frame->hd.stream_id][n] =
        std::string(reinterpret_cast<const char*>(value), valuelen);
    return 0;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto input = splitFilterInput(data, size);
  if (!input) {
    return 0;
  }
  const uint8_t control = input->control;
  const std::string_view down = input->down, up = input->up;
  Http2FilterConfig config;
  config.underscores = (control & 1) != 0 ? Http1FilterConfig::Underscores::kReject
                                          : Http1FilterConfig::Underscores::kDrop;
  config.path.escaped_slashes = static_cast<EscapedSlashes>((control >> 1) % 3);
  config.path.merge_slashes = (control & 0x08) != 0;
  config.now = [] { return std::chrono::steady_clock::time_point(); };
  auto filter = Http2Filter::create(
      config,
      [](const RequestView& v) {
        return AuthzDecision{v.path.substr(0, 6) != "/admin", "deny-admin", "0"};
      },
      [](const RequestView&, HeaderEdits& e) { e.set("traceparent", std::string(kTraceparent)); });
  FUZZ_CHECK(filter.ok());
  std::vector<RequestRecord> records;
  (*filter)->setRecordSink([&](const RequestRecord& r) { records.push_back(r); });
  FilterOutput out;
  (*filter)->start(out);
  std::string client(kPreface);
  client.append(down);
  const size_t step = 1 + (control >> 4) * 9;
  for (size_t i = 0; i < client.size(); i += step) {
    (*filter)->onDownstreamData(std::string_view(client).substr(i, step), out);
  }
  // Decoded before the app's bytes: until the app's SETTINGS arrive the filter keeps to the
  // protocol's defaults, which the decoder below also assumes.
  const std::string to_app = out.to_upstream;
  for (size_t i = 0; i < up.size(); i += step) {
    (*filter)->onUpstreamData(up.substr(i, step), out);
  }
  (*filter)->onDownstreamEof(out);

  AppDecoder app;
  nghttp2_session_callbacks* cbs;
  FUZZ_CHECK(nghttp2_session_callbacks_new(&cbs) == 0);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &AppDecoder::onHeader);
  nghttp2_session* session;
  FUZZ_CHECK(nghttp2_session_server_new(&session, cbs, &app) == 0);
  nghttp2_session_callbacks_del(cbs);
  ssize_t rv = nghttp2_session_mem_recv(session, reinterpret_cast<const uint8_t*>(to_app.data()),
                                        to_app.size());
  nghttp2_session_del(session);
  FUZZ_CHECK(rv == static_cast<ssize_t>(to_app.size()));  // valid HTTP/2 throughout

  for (auto& [id, fields] : app.requests) {
    // One authority, in normal form: the one policy matched.
    FUZZ_CHECK(fields.count("host") == 0);
    auto authority = normalizeAuthority(fields[":authority"]);
    FUZZ_CHECK(authority.ok() && *authority == fields[":authority"]);
    const std::string& method = fields[":method"];
    if (method == "CONNECT") {
      continue;
    }
    const std::string& path = fields[":path"];
    auto target = parseRequestTarget(method, path, config.path);
    FUZZ_CHECK(target.ok());
    FUZZ_CHECK(target->forwarded() == path);  // already normalized
    FUZZ_CHECK(target->path.substr(0, 6) != "/admin");
    FUZZ_CHECK(fields["traceparent"] == kTraceparent);
  }
  for (const RequestRecord& r : records) {
    FUZZ_CHECK(r.allowed || r.forwarded_traceparent.empty());  // a refused request went nowhere
    FUZZ_CHECK(!r.allowed || r.path.substr(0, 6) != "/admin");
    FUZZ_CHECK(r.authorized || !r.allowed);
    if (r.authorized && !r.allowed) {
      FUZZ_CHECK(r.status == 403);
      FUZZ_CHECK(r.request_body_bytes == 0);
    }
  }
  return 0;
}
