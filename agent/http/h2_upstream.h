// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// HTTP/2 upstream connections of the routed outbound path for h2c and gRPC (issue 22 point 1),
// per worker and per (backend cluster, source pod, endpoint): an nghttp2 client session over the
// same kind of link upstream_pool.h opens (upstream_link.h: the HBONE stream itself to another
// node, a pipe into the destination's inbound relay on this one), so h2 routing adds no second
// connect/mTLS/policy path either. Many routed streams share one
// connection (up to the backend's SETTINGS_MAX_CONCURRENT_STREAMS, at most 100); another is
// opened when all are full. A connection with no stream closes after --pool-idle-timeout-ms.
// Flow control is end to end: response bytes are acknowledged (WINDOW_UPDATE) only as the
// stream's owner hands them to its client (consume()).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/http/upstream_link.h"
#include "agent/pods/local_pods.h"
#include "agent/state/workload_state.h"

#include <nghttp2/nghttp2.h>

namespace ferry::agent {

struct WorkerContext;

using H2Fields = std::vector<std::pair<std::string, std::string>>;

// nghttp2's view of `fields` (pointing into them).
std::vector<nghttp2_nv> toNv(const H2Fields& fields);

// The owner of one upstream stream: gives the request body and hears the response.
class H2UpstreamStream {
 public:
  virtual ~H2UpstreamStream() = default;
  // Up to `room` body bytes into `buf`; *eof when the body ended (trailers() go after it).
  // -1: nothing now (resumed by H2Upstream::resume()).
  virtual long upBody(uint8_t* buf, size_t room, bool* eof) = 0;
  virtual H2Fields upRequestTrailers() = 0;
  // The response head (`end`: nothing follows, a trailers-only response), an informational
  // (1xx) head is never passed.
  virtual void upHeaders(int status, H2Fields fields, bool end) = 0;
  virtual void upData(std::string_view data) = 0;
  virtual void upTrailers(H2Fields fields) = 0;
  // The stream is over: `ended`: the response ended cleanly; else `error` (RST_STREAM code or
  // the connection's loss) and `maybe_processed`: the backend may have seen the request.
  virtual void upClosed(bool ended, uint32_t error, bool maybe_processed) = 0;
};

class H2Upstream;

class H2UpstreamPool {
 public:
  explicit H2UpstreamPool(WorkerContext& ctx) : ctx_(ctx) {}
  ~H2UpstreamPool();
  H2UpstreamPool(const H2UpstreamPool&) = delete;
  H2UpstreamPool& operator=(const H2UpstreamPool&) = delete;

  // A connection for `key` with room for one more stream, opened when none has.
  absl::StatusOr<H2Upstream*> get(const std::string& key,
                                  const std::shared_ptr<const LocalPod>& source,
                                  const WorkloadState& state, const Destination& destination,
                                  const std::string& source_ip);
  size_t connectionCount() const;

 private:
  friend class H2Upstream;
  void forget(H2Upstream* conn);

  WorkerContext& ctx_;
  std::map<std::string, std::vector<H2Upstream*>> conns_;
};

class H2Upstream : public Deferred {
 public:
  H2Upstream(WorkerContext& ctx, H2UpstreamPool& pool, std::string key,
             std::unique_ptr<UpstreamLink> link);
  ~H2Upstream() override;

  // Submits a request (`fields`: pseudo-headers first) with a body from `owner`; the stream id,
  // or an error. The owner hears of it until it closes or cancel().
  absl::StatusOr<int32_t> submit(const H2Fields& fields, H2UpstreamStream* owner);
  // The owner goes away: the stream is reset (CANCEL) if still open; no more callbacks.
  void cancel(int32_t id);
  // The owner has body bytes again.
  void resume(int32_t id);
  // `n` response bytes of stream `id` were handed on: the backend may send that many more.
  void consume(int32_t id, size_t n);
  bool hasRoom() const;
  void flush();

 private:
  static long onSend(nghttp2_session*, const uint8_t*, size_t, int, void*);
  static int onHeader(nghttp2_session*, const void*, const uint8_t*, size_t, const uint8_t*, size_t,
                      uint8_t, void*);
  static int onFrameRecv(nghttp2_session*, const void*, void*);
  static int onData(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int onClose(nghttp2_session*, int32_t, uint32_t, void*);
  void onEvents();
  void fail();

  struct Stream {
    H2UpstreamStream* owner = nullptr;
    int status = 0;
    H2Fields fields;
    bool head_done = false;
    bool ended = false;  // END_STREAM received
  };

  WorkerContext& ctx_;
  H2UpstreamPool& pool_;
  std::string key_;
  std::unique_ptr<UpstreamLink> link_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Stream> streams_;
  bool dead_ = false;
  bool heard_ = false;  // any frame from the backend
  bool in_flush_ = false;
  bool in_recv_ = false;
  bool flush_again_ = false;
  bool goaway_ = false;
  uint64_t idle_timer_ = 0;

  void armIdle();
};

// The worker's pool, created on first use.
H2UpstreamPool& h2UpstreamPool(WorkerContext& ctx);

}  // namespace ferry::agent
