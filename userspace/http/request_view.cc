// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/request_view.h"

#include "http/chars.h"

namespace ferry::http {

std::optional<std::string_view> RequestView::header(std::string_view name) const {
  for (const Header& h : headers) {
    if (chars::equalsIgnoreCase(h.name, name)) {
      return h.value;
    }
  }
  return std::nullopt;
}

std::optional<std::string> RequestView::headerJoined(std::string_view name) const {
  std::optional<std::string> out;
  for (const Header& h : headers) {
    if (!chars::equalsIgnoreCase(h.name, name)) {
      continue;
    }
    if (!out) {
      out.emplace(h.value);
    } else {
      out->push_back(',');
      out->append(h.value);
    }
  }
  return out;
}

void HeaderEdits::set(std::string name, std::string value) {
  std::erase_if(adds_, [&](const auto& kv) { return chars::equalsIgnoreCase(kv.first, name); });
  removes_.push_back(name);
  adds_.emplace_back(std::move(name), std::move(value));
}

bool HeaderEdits::removes(std::string_view name) const {
  for (const std::string& r : removes_) {
    if (chars::equalsIgnoreCase(r, name)) {
      return true;
    }
  }
  return false;
}

}  // namespace ferry::http
