// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "k8s/loader.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include "policy/text.h"

namespace ferry::k8s {
namespace {

// Takes `ref` out of the result (object, name and claims); `message` is its error.
void evict(LoadResult& r, const ObjectRef& ref, std::string message) {
  r.errors.push_back({r.sources[ref], ref, std::move(message)});
  r.objects.erase(ref);
  r.sources.erase(ref);
  r.files.erase(ref);
  r.claims.release(ref);
}

bool inForceFrom(const InForce& in_force, const ObjectRef& ref, const std::string& file) {
  auto it = in_force.files.find(ref);
  return it != in_force.files.end() && it->second == file;
}

bool holdsInForce(const InForce& in_force, const std::string& key, const ObjectRef& ref) {
  auto it = in_force.claims.find(key);
  return it != in_force.claims.end() && it->second == ref;
}

// Objects whose last good version stays in force (the source keeps what it refused): those
// of files refused as a whole, and those refused by name without an object this time.
std::set<ObjectRef> lastGoodStays(const LoadResult& r) {
  std::set<ObjectRef> out = r.kept;
  for (const auto& e : r.errors) {
    if (e.ref && r.objects.count(*e.ref) == 0) {
      out.insert(*e.ref);
    }
  }
  return out;
}

// Admits the claims of `decoded`: a claim held by an earlier object of this load is taken,
// unless `decoded` holds it in force (then the earlier holder is refused). False, with the
// error, when a claim is taken.
bool admitClaims(LoadResult& r, const Decoded& decoded, const std::string& source,
                 const InForce& in_force) {
  const std::vector<Claim> claims = claimsOf(decoded.object);
  std::vector<std::pair<ObjectRef, const Claim*>> displaced;
  for (const auto& c : claims) {
    auto holder = r.claims.holderOther(c.key, decoded.ref);
    if (!holder) {
      continue;
    }
    if (!holdsInForce(in_force, c.key, decoded.ref)) {
      r.errors.push_back(
          {source, decoded.ref,
           text::cat(decoded.ref.str(), ": ", c.field, ": ", c.value, " is already taken by ",
                     holder->str(), " (from ", r.sources[*holder], "); this one is refused")});
      return false;
    }
    displaced.emplace_back(*holder, &c);
  }
  for (const auto& [d, c] : displaced) {
    auto it = r.objects.find(d);
    if (it == r.objects.end()) {
      continue;  // already refused for another claim
    }
    std::string field = c->field;
    for (const auto& own : claimsOf(it->second.object)) {
      field = own.key == c->key ? own.field : field;
    }
    evict(r, d,
          text::cat(d.str(), ": ", field, ": ", c->value, " is held by ", decoded.ref.str(),
                    " (in force, from ", source, "); this one is refused"));
  }
  r.claims.add(decoded.ref, claims);
  return true;
}

}  // namespace

void LoadResult::addText(std::string_view text, std::string_view source,
                         const DecodeOptions& options, const InForce& in_force) {
  const std::string file(source);
  for (auto& doc : decodeDocuments(text, source, options)) {
    if (doc.whole_file) {
      errors.push_back({doc.source, std::nullopt, std::string(doc.decoded.status().message())});
      refused_files.insert(file);
      continue;
    }
    if (!doc.decoded.ok()) {
      errors.push_back({doc.source, doc.ref, std::string(doc.decoded.status().message()),
                        doc.stand_in.has_value()});
      if (doc.stand_in) {
        // A refused AuthorizationPolicy is replaced by its fail-closed stand-in.
        doc.decoded = std::move(*doc.stand_in);
      } else if (!doc.ref) {
        continue;
      }
    }
    const ObjectRef ref = doc.decoded.ok() ? doc.decoded->ref : *doc.ref;
    if (auto it = sources.find(ref); it != sources.end()) {
      // One object per kind and name: the one in force keeps its place, else the first loaded.
      if (!inForceFrom(in_force, ref, file) || files[ref] == file) {
        errors.push_back({doc.source, ref,
                          text::cat(ref.str(), ": duplicates the object from ", it->second,
                                    ", which keeps its place; this one is refused")});
        continue;
      }
      evict(*this, ref,
            text::cat(ref.str(), ": duplicates the object in force from ", doc.source,
                      ", which keeps its place; this one is refused"));
    }
    if (doc.decoded.ok() && !admitClaims(*this, *doc.decoded, doc.source, in_force)) {
      continue;
    }
    sources[ref] = doc.source;
    files[ref] = file;
    if (doc.decoded.ok()) {
      objects.emplace(ref, std::move(*doc.decoded));
    }
  }
}

void LoadResult::finish(const InForce& in_force) {
  for (const auto& [ref, file] : in_force.files) {
    if (refused_files.count(file) == 0) {
      continue;
    }
    if (sources.count(ref) > 0) {
      evict(*this, ref,
            text::cat(ref.str(), ": duplicates the object in force from ", file,
                      " (refused as a whole; its last good version stays); this one is refused"));
    }
    kept.insert(ref);
  }
  const std::set<ObjectRef> stays = lastGoodStays(*this);
  for (const auto& [key, holder] : in_force.claims) {
    if (stays.count(holder) == 0) {
      continue;
    }
    if (auto other = claims.holderOther(key, holder)) {
      evict(*this, *other,
            text::cat(other->str(), ": takes an address held by ", holder.str(),
                      " (in force, its last good version stays); this one is refused"));
    }
  }
}

InForce LoadResult::inForce(const InForce& previous) const {
  InForce next{files, claims.holders()};
  const std::set<ObjectRef> stays = lastGoodStays(*this);
  for (const auto& ref : stays) {
    if (auto it = previous.files.find(ref); it != previous.files.end()) {
      next.files.emplace(ref, it->second);
    }
  }
  for (const auto& [key, holder] : previous.claims) {
    if (stays.count(holder) > 0) {
      next.claims.emplace(key, holder);
    }
  }
  return next;
}

void loadFileInto(LoadResult& result, const std::filesystem::path& file,
                  const DecodeOptions& options, const InForce& in_force) {
  std::error_code ec;
  auto size = std::filesystem::file_size(file, ec);
  if (ec) {
    result.errors.push_back({.source = file.string(),
                             .message = text::cat(file.string(), ": cannot read: ", ec.message()),
                             .io = true});
    result.refused_files.insert(file.string());
    return;
  }
  if (size > kMaxManifestBytes) {
    result.errors.push_back({file.string(), std::nullopt,
                             text::cat(file.string(), ": ", size, " bytes is more than the ",
                                       kMaxManifestBytes, " a manifest file may hold")});
    result.refused_files.insert(file.string());
    return;
  }
  std::ifstream in(file, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  if (!in.good() && !in.eof()) {
    result.errors.push_back({.source = file.string(),
                             .message = text::cat(file.string(), ": cannot read"),
                             .io = true});
    result.refused_files.insert(file.string());
    return;
  }
  result.addText(buf.str(), file.string(), options, in_force);
}

LoadResult loadFile(const std::filesystem::path& file, const DecodeOptions& options) {
  LoadResult result;
  loadFileInto(result, file, options);
  return result;
}

LoadResult loadFolder(const std::filesystem::path& folder, const DecodeOptions& options,
                      const InForce& in_force) {
  LoadResult result;
  std::error_code ec;
  // Oldest first, so that on a fresh start the object that was there first wins a duplicate.
  std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> files;
  for (auto it = std::filesystem::recursive_directory_iterator(folder, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const auto& path = it->path();
    auto ext = path.extension().string();
    // Editors and kubectl leave dot-files; Kubernetes-style folders skip them too.
    if (it->is_regular_file() && path.filename().string().rfind('.', 0) != 0 &&
        (ext == ".yaml" || ext == ".yml" || ext == ".json")) {
      std::error_code time_ec;
      files.emplace_back(std::filesystem::last_write_time(path, time_ec), path);
    }
  }
  if (ec) {
    result.errors.push_back({.source = folder.string(),
                             .message = text::cat(folder.string(), ": cannot list: ", ec.message()),
                             .io = true});
  }
  std::sort(files.begin(), files.end());
  for (const auto& [mtime, path] : files) {
    loadFileInto(result, path, options, in_force);
  }
  result.finish(in_force);
  return result;
}

}  // namespace ferry::k8s
