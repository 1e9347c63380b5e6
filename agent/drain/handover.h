// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Listener hand-over between two agents of one node (an upgrade or a restart). The running
// agent listens on a Unix SOCK_SEQPACKET socket (--handover-socket). A starting agent connects
// to it before it opens anything and the two speak, one record each:
//
//   new -> old   "take <pid>"
//   old -> new   "fds\n<name>\n<name>..." with the listening sockets as SCM_RIGHTS (up to
//                kMaxFdsPerRecord a record), then "end". The old agent stops its enrollment
//                server first, so no pod is enrolled by it after this point.
//   new -> old   "ready" once the new agent is ready (or its predecessor vanished): from then
//                on it accepts; the old one closes its copies of the listeners (the sockets and
//                their accept queues live on in the new agent) and drains.
//                "ready resume-v1" from an agent that takes established streams over: the old
//                one then sends each resumable stream as a "conn" record with its app socket
//                and "data" records (stream_state.h, docs/upgrades.md) before it drains the rest.
//   old -> new   "draining <pid> <connections>" whenever the count changes, until it exits;
//                the end of the connection tells the new agent its predecessor is gone.
//
// If the new agent goes away before "ready", the old one resumes enrollment and carries on.
// Names: "enroll", "admin", "readiness", "metrics", "pod/<uid>/<port>".

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/drain/stream_state.h"

namespace ferry::agent {

inline constexpr size_t kMaxFdsPerRecord = 200;  // below the kernel's SCM_MAX_FD (253)

// Listening sockets received from a predecessor, by name. Each is taken at most once; what
// nobody takes is closed by closeRest() (or the destructor).
class InheritedListeners {
 public:
  InheritedListeners() = default;
  InheritedListeners(InheritedListeners&&) = delete;
  ~InheritedListeners() { closeRest(); }
  void add(const std::string& name, int fd);
  std::vector<int> take(const std::string& name);  // the caller owns them
  int takeOne(const std::string& name);            // -1 when there is none
  size_t size() const;
  void closeRest();

 private:
  mutable std::mutex mu_;
  std::multimap<std::string, int> fds_;
};

std::string podListenerName(const std::string& uid, uint16_t port);

// The new agent's side: a connection to the predecessor.
class Predecessor {
 public:
  // Connects to `path` and takes the predecessor's listeners into `into`. nullptr (OK) when
  // nobody listens there.
  static absl::StatusOr<std::unique_ptr<Predecessor>> takeOver(const std::string& path,
                                                               InheritedListeners& into);
  ~Predecessor();
  // Says "ready" (once) and starts watching the predecessor's drain reports; `gone` runs on the
  // watcher thread when the predecessor has exited (or at once if it already has).
  void ready();
  // Calls `gone` when the connection ends (before or after ready()); set before ready().
  void onGone(std::function<void()> gone) { gone_ = std::move(gone); }
  // Takes established streams over: `stream` runs on the watcher thread for each one handed
  // (it owns the app socket). Set before ready(); without it none are asked for.
  void onStream(std::function<void(HandedStream)> stream) { stream_ = std::move(stream); }
  int64_t streamsReceived() const { return streams_received_.load(); }
  pid_t pid() const { return pid_.load(); }
  int64_t connections() const { return connections_.load(); }
  bool alive() const { return !gone_flag_.load(); }
  // Blocks until the connection ends or `ms` pass; true when the predecessor is gone.
  bool waitGone(int ms);

 private:
  explicit Predecessor(int fd) : fd_(fd) {}
  void watch();

  int fd_;
  std::atomic<pid_t> pid_{0};
  std::atomic<int64_t> connections_{-1};
  std::atomic<bool> gone_flag_{false};
  std::atomic<bool> ready_sent_{false};
  std::function<void()> gone_;
  std::function<void(HandedStream)> stream_;
  std::atomic<int64_t> streams_received_{0};
  std::thread watcher_;
  int stop_fd_ = -1;
};

// The running agent's side: serves one successor at a time.
class HandoverServer {
 public:
  struct Callbacks {
    // On "take": stop enrolling, return the listening sockets by name (not given away: the
    // agent keeps its own descriptors until onReady).
    std::function<std::vector<std::pair<std::string, int>>()> collect;
    std::function<void(pid_t successor)> onReady;  // the successor accepts now
    std::function<void()> onAbort;                 // it went away before "ready"
    std::function<int64_t()> connections;          // reported while draining
    // After onReady, for a successor that takes streams over: freeze and return the resumable
    // streams, sockets given away (sent, then closed here; reset if sending failed, so an app
    // never mistakes a lost stream for a clean end). May be empty; `handed(n)`: how many went.
    // Called again every 50 ms while the successor is connected, for streams that became
    // resumable or were suspended since.
    std::function<std::vector<HandedStream>()> handStreams;
    std::function<void(size_t sent)> handed;
  };
  // Binds `path` (a stale socket file is replaced; the caller has already taken over from any
  // live agent there).
  static absl::StatusOr<std::unique_ptr<HandoverServer>> start(const std::string& path,
                                                               Callbacks callbacks);
  // Stops; unlinks the socket file only if it is still this server's (a successor rebinds it).
  ~HandoverServer();

 private:
  HandoverServer(std::string path, int fd, int stop_fd, ino_t inode, Callbacks callbacks);
  void run();
  // One successor, from "take" to its end (or ours); false when stopping.
  bool serve(int client);
  bool send(int client, const std::string& text, const std::vector<int>& fds);
  // Hands over what callbacks_.handStreams gives; logs the first batch even when empty.
  void sendStreams(int client, bool first);

  std::string path_;
  int fd_;
  int stop_fd_;
  ino_t inode_;
  Callbacks callbacks_;
  std::thread thread_;
};

}  // namespace ferry::agent
