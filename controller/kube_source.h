// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The Kubernetes source: one informer per kind, each object decoded strictly and applied to
// the store. A refused object is logged and counted and never blocks the others; a refused
// update leaves the last good version in place.

#include <map>
#include <memory>
#include <vector>

#include "controller/source.h"
#include "controller/store.h"
#include "k8s/object.h"
#include "kube/client.h"
#include "kube/informer.h"

namespace ferry::controller {

struct KubeSourceOptions {
  kube::InformerOptions informer;
  k8s::DecodeOptions decode;
  kube::Sleeper* sleeper = nullptr;  // null: real time; tests pass a fake clock
};

// The API resource each kind is read from.
const kube::Resource& resourceFor(k8s::Kind kind);

class KubeSource : public Source {
 public:
  KubeSource(const kube::Client& client, StateStore& store, KubeSourceOptions options = {});
  ~KubeSource() override;

  absl::Status start() override;
  bool waitForSync(std::chrono::milliseconds timeout) override;
  void stop() override;
  std::string describe() const override;

  const kube::Informer& informer(k8s::Kind kind) const;

 private:
  class Handler;
  const kube::Client& client_;
  StateStore& store_;
  const KubeSourceOptions options_;
  std::vector<std::unique_ptr<Handler>> handlers_;
  std::map<k8s::Kind, std::unique_ptr<kube::Informer>> informers_;
};

}  // namespace ferry::controller
