// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Loads a folder of manifests (standalone mode, tests, ferryctl): every *.yaml, *.yml and *.json
// file below it, oldest first (modification time, then path). Objects come back keyed by kind +
// namespace/name; each bad object is an error of its own and never stops the others.
//
// Admission keeps what is in force (InForce, from the previous load) in place:
// - a file over a budget (kMaxManifestBytes, kMaxManifestNodes, kMaxManifestObjects), or that
//   cannot be read, is refused as a whole; the objects it held stay in force (LoadResult::kept);
// - a second object with the same kind and name never replaces the one in force, whatever the
//   file order: the newcomer is refused, and its error names the newcomer's file. With nothing
//   in force (a fresh start) the first one loaded wins, i.e. the one in the oldest file;
// - an object whose unique claim (claims.h: ClusterIP, pod IP) another holds is refused with
//   the holder's name; the holder in force keeps it, else the first one loaded.

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "k8s/claims.h"
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

// What a previous load put in force.
struct InForce {
  std::map<ObjectRef, std::string> files;   // the file each object came from
  std::map<std::string, ObjectRef> claims;  // the holder of each unique claim
};

struct LoadResult {
  std::map<ObjectRef, Decoded> objects;
  // Where each object was read ("dir/a.yaml, document 2") and from which file. Objects refused
  // by their decoder are here too: a refused object keeps its name (its last good version stays
  // in force), so a duplicate elsewhere cannot take its place.
  std::map<ObjectRef, std::string> sources;
  std::map<ObjectRef, std::string> files;
  std::vector<LoadError> errors;
  std::set<std::string> refused_files;  // refused as a whole (unreadable or over a budget)
  std::set<ObjectRef> kept;  // in force from a refused file: their last good version stays
  ClaimTable claims;

  // Adds the objects of one file's text (`source` names the file). A refused AuthorizationPolicy
  // is an error and its fail-closed stand-in (refusedStandIn in decode.h) takes its place in
  // `objects`.
  void addText(std::string_view text, std::string_view source, const DecodeOptions& options,
               const InForce& in_force = {});
  // After the last file: objects that take the name or a claim of one kept in force (from a
  // refused file, or refused by its decoder) are refused in turn.
  void finish(const InForce& in_force);
  // What this load leaves in force, for the next one.
  InForce inForce(const InForce& previous) const;

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
LoadResult loadFolder(const std::filesystem::path& folder, const DecodeOptions& options = {},
                      const InForce& in_force = {});
// Adds one file to an existing result.
void loadFileInto(LoadResult& result, const std::filesystem::path& file,
                  const DecodeOptions& options, const InForce& in_force = {});

}  // namespace ferry::k8s
