// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "k8s/loader.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include "policy/text.h"

namespace ferry::k8s {

void LoadResult::addText(std::string_view text, std::string_view source,
                         const DecodeOptions& options) {
  for (auto& doc : decodeDocuments(text, source, options)) {
    if (!doc.decoded.ok()) {
      errors.push_back({doc.source, doc.ref, std::string(doc.decoded.status().message()),
                        doc.stand_in.has_value()});
      if (!doc.stand_in) {
        continue;
      }
      // A refused AuthorizationPolicy is replaced by its fail-closed stand-in.
      doc.decoded = std::move(*doc.stand_in);
    }
    ObjectRef ref = doc.decoded->ref;
    auto [it, inserted] = sources.emplace(ref, doc.source);
    if (!inserted) {
      errors.push_back({doc.source, ref,
                        text::cat(ref.str(), ": duplicates the object in ", it->second,
                                  " (the first one is kept)")});
      continue;
    }
    objects.emplace(ref, std::move(*doc.decoded));
  }
}

void loadFileInto(LoadResult& result, const std::filesystem::path& file,
                  const DecodeOptions& options) {
  std::error_code ec;
  auto size = std::filesystem::file_size(file, ec);
  if (ec) {
    result.errors.push_back({.source = file.string(),
                             .message = text::cat(file.string(), ": cannot read: ", ec.message()),
                             .io = true});
    return;
  }
  if (size > kMaxManifestBytes) {
    result.errors.push_back({file.string(), std::nullopt,
                             text::cat(file.string(), ": ", size, " bytes is more than the ",
                                       kMaxManifestBytes, " a manifest file may hold")});
    return;
  }
  std::ifstream in(file, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  if (!in.good() && !in.eof()) {
    result.errors.push_back({.source = file.string(),
                             .message = text::cat(file.string(), ": cannot read"),
                             .io = true});
    return;
  }
  result.addText(buf.str(), file.string(), options);
}

LoadResult loadFile(const std::filesystem::path& file, const DecodeOptions& options) {
  LoadResult result;
  loadFileInto(result, file, options);
  return result;
}

LoadResult loadFolder(const std::filesystem::path& folder, const DecodeOptions& options) {
  LoadResult result;
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (auto it = std::filesystem::recursive_directory_iterator(folder, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const auto& path = it->path();
    auto ext = path.extension().string();
    // Editors and kubectl leave dot-files; Kubernetes-style folders skip them too.
    if (it->is_regular_file() && path.filename().string().rfind('.', 0) != 0 &&
        (ext == ".yaml" || ext == ".yml" || ext == ".json")) {
      files.push_back(path);
    }
  }
  if (ec) {
    result.errors.push_back({.source = folder.string(),
                             .message = text::cat(folder.string(), ": cannot list: ", ec.message()),
                             .io = true});
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    loadFileInto(result, f, options);
  }
  return result;
}

}  // namespace ferry::k8s
