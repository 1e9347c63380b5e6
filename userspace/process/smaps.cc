// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "process/smaps.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ferry::process {

namespace {

// "Name:   123 kB" -> 123 when the line is that field.
bool readKib(absl::string_view line, absl::string_view name, uint64_t* kib) {
  if (!absl::ConsumePrefix(&line, name)) {
    return false;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
  return !parts.empty() && absl::SimpleAtoi(parts[0], kib);
}

}  // namespace

bool SmapsMapping::privateReadOnlyFile() const {
  return perms.size() == 4 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p' && inode != 0 &&
         !path.empty() && path.front() == '/';
}

absl::StatusOr<std::vector<SmapsMapping>> parseSmaps(absl::string_view text) {
  std::vector<SmapsMapping> mappings;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    // A field line starts with "Name:"; a header with the address range "start-end".
    if (f.empty() || f[0].back() == ':') {
      if (!mappings.empty()) {
        readKib(line, "Rss:", &mappings.back().rss_kib) ||
            readKib(line, "Anonymous:", &mappings.back().anonymous_kib);
      }
      continue;
    }
    std::vector<absl::string_view> range = absl::StrSplit(f[0], '-');
    SmapsMapping m;
    uint64_t start = 0, end = 0;
    if (f.size() < 5 || range.size() != 2 || !absl::SimpleHexAtoi(range[0], &start) ||
        !absl::SimpleHexAtoi(range[1], &end) || !absl::SimpleAtoi(f[4], &m.inode)) {
      return absl::InvalidArgumentError(absl::StrCat("not an smaps line: \"", line, "\""));
    }
    m.start = start;
    m.end = end;
    m.perms = std::string(f[1]);
    // A path may hold spaces (and ends in " (deleted)" once the file is gone).
    m.path = absl::StrJoin(f.begin() + std::min<size_t>(5, f.size()), f.end(), " ");
    mappings.push_back(std::move(m));
  }
  if (mappings.empty()) {
    return absl::InvalidArgumentError("no mapping: not smaps text");
  }
  return mappings;
}

absl::StatusOr<std::vector<SmapsMapping>> readSmaps(int pid) {
  const std::string path = pid == 0 ? "/proc/self/smaps" : absl::StrCat("/proc/", pid, "/smaps");
  std::ifstream in(path);
  if (!in) {
    return absl::UnavailableError(absl::StrCat("cannot read ", path));
  }
  // Read whole before anything acts on it: unmapping while reading would change what is read.
  std::ostringstream text;
  text << in.rdbuf();
  return parseSmaps(text.str());
}

}  // namespace ferry::process
