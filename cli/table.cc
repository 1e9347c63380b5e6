// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "cli/table.h"

#include <algorithm>

namespace ferry::cli {

std::string renderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 0);
  auto cell = [](const std::vector<std::string>& row, size_t i) -> std::string {
    return i < row.size() && !row[i].empty() ? row[i] : std::string("-");
  };
  for (size_t i = 0; i < header.size(); ++i) {
    width[i] = header[i].size();
    for (const auto& row : rows) {
      width[i] = std::max(width[i], cell(row, i).size());
    }
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& row, bool is_header) {
    std::string text;
    for (size_t i = 0; i < header.size(); ++i) {
      std::string value = is_header ? header[i] : cell(row, i);
      if (i + 1 < header.size()) {
        value.resize(width[i] + 2, ' ');
      }
      text += value;
    }
    out += text + "\n";
  };
  line(header, true);
  for (const auto& row : rows) {
    line(row, false);
  }
  return out;
}

}  // namespace ferry::cli
