// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

namespace ferry::cli {

// Left-aligned columns separated by two spaces, kubectl style. Empty cells print as "-".
std::string renderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

}  // namespace ferry::cli
