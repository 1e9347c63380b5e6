// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Loads a folder of manifests (standalone mode, tests, ferryctl): every *.yaml, *.yml and *.json
// file below it, in path order. Objects come back keyed by kind + namespace/name; each bad
// object is an error of its own and never stops the others.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "k8s/decode.h"
#include "k8s/object.h"

namespace ferry::k8s {

struct LoadError {
  std::string source;            // file (and document) it came from
  std::optional<ObjectRef> ref;  // the object, when it could be named
  std::string message;           // names the object and field path
  // A refused AuthorizationPolicy whose fail-closed stand-in is in `objects` in its place.
  bool failed_closed = false;
  // The folder or a file could not be read at all (descriptors or memory exhausted, permissions):
  // what was loaded is incomplete, not wrong. A caller holding a good state keeps it.
  bool io = false;
};

struct LoadResult {
  std::map<ObjectRef, Decoded> objects;
  std::map<ObjectRef, std::string> sources;  // where each object was read
  std::vector<LoadError> errors;

  // Adds the objects of one file's text. A second object with the same kind and key is an
  // error; the first one stays. A refused AuthorizationPolicy is an error and its fail-closed
  // stand-in (refusedStandIn in decode.h) takes its place in `objects`.
  void addText(std::string_view text, std::string_view source, const DecodeOptions& options);
  // All decoded objects of one model type, e.g. all<model::AuthorizationPolicy>().
  template <typename T>
  std::vector<T> all() const {
    std::vector<T> out;
    for (const auto& [ref, decoded] : objects) {
      if (const T* t = std::get_if<T>(&decoded.object)) {
        out.push_back(*t);
      }
    }
    return out;
  }
};

// Files larger than this are refused: Kubernetes caps an object near 1.5 MiB, and a folder
// loader must not be made to parse unbounded input.
inline constexpr size_t kMaxManifestBytes = 8u << 20;

LoadResult loadFile(const std::filesystem::path& file, const DecodeOptions& options = {});
LoadResult loadFolder(const std::filesystem::path& folder, const DecodeOptions& options = {});
// Adds one file to an existing result.
void loadFileInto(LoadResult& result, const std::filesystem::path& file,
                  const DecodeOptions& options);

}  // namespace ferry::k8s
