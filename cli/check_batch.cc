// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// `ferryctl check --batch`: many checks over one inventory, a JSON line in and a JSON line out.
#include <algorithm>
#include <iterator>
#include <optional>
#include <string>

#include "cli/check.h"

namespace ferry::cli {
namespace {

absl::StatusOr<model::ObjectKey> podField(const nlohmann::json& query, const char* field) {
  auto it = query.find(field);
  if (it == query.end() || !it->is_string()) {
    return absl::InvalidArgumentError(std::string(field) + " must be a string \"ns/pod\"");
  }
  auto key = parsePodName(it->get<std::string>());
  if (!key) {
    return absl::InvalidArgumentError(std::string(field) +
                                      ": pods are named namespace/name, not '" +
                                      it->get<std::string>() + "'");
  }
  return *key;
}

// The string at `field`, nullopt when absent; an error when present but not a string.
absl::StatusOr<std::optional<std::string>> optionalString(const nlohmann::json& query,
                                                          const char* field) {
  auto it = query.find(field);
  if (it == query.end() || it->is_null()) {
    return std::optional<std::string>();
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(std::string(field) + " must be a string");
  }
  return std::optional<std::string>(it->get<std::string>());
}

}  // namespace

absl::StatusOr<CheckArgs> checkArgsFromJson(const nlohmann::json& query) {
  if (!query.is_object()) {
    return absl::InvalidArgumentError("a query is a JSON object");
  }
  static const char* const kKnown[] = {
      "source",       "destination",       "method", "path", "port", "host", "headers", "plaintext",
      "trust_domain", "request_principal", "claims"};
  for (const auto& [name, _] : query.items()) {
    if (std::find_if(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return name == k; }) == std::end(kKnown)) {
      return absl::InvalidArgumentError("unknown field '" + name + "'");
    }
  }
  CheckArgs args;
  auto source = podField(query, "source");
  if (!source.ok()) {
    return source.status();
  }
  auto destination = podField(query, "destination");
  if (!destination.ok()) {
    return destination.status();
  }
  args.source = *source;
  args.destination = *destination;
  auto method = optionalString(query, "method");
  auto path = optionalString(query, "path");
  auto host = optionalString(query, "host");
  auto trust_domain = optionalString(query, "trust_domain");
  for (const auto* s : {&method, &path, &host, &trust_domain}) {
    if (!s->ok()) {
      return s->status();
    }
  }
  if (method->has_value() != path->has_value()) {
    return absl::InvalidArgumentError("method and path come together");
  }
  if (method->has_value()) {
    const bool connect = **method == "CONNECT";
    if (connect ? !(*path)->empty() : !(*path)->starts_with("/")) {
      return absl::InvalidArgumentError(connect ? "CONNECT has an empty path and its target as host"
                                                : "path must start with '/'");
    }
  }
  args.method = *method;
  args.path = *path;
  args.host = *host;
  if (trust_domain->has_value()) {
    args.trust_domain = **trust_domain;
  }
  if (auto it = query.find("port"); it != query.end()) {
    if (!it->is_number_unsigned() || *it == 0 || *it > 65535) {
      return absl::InvalidArgumentError("port must be a number from 1 to 65535");
    }
    args.port = it->get<uint16_t>();
  }
  if (auto it = query.find("plaintext"); it != query.end()) {
    if (!it->is_boolean()) {
      return absl::InvalidArgumentError("plaintext must be true or false");
    }
    args.plaintext = it->get<bool>();
  }
  if (auto it = query.find("headers"); it != query.end()) {
    if (!it->is_object()) {
      return absl::InvalidArgumentError("headers must be an object of strings");
    }
    for (const auto& [name, value] : it->items()) {
      if (!value.is_string() || name.empty()) {
        return absl::InvalidArgumentError("headers must be an object of strings");
      }
      args.headers.emplace_back(name, value.get<std::string>());
    }
  }
  if (auto it = query.find("request_principal"); it != query.end()) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      return absl::InvalidArgumentError("request_principal must be a non-empty string");
    }
    args.request_principal = it->get<std::string>();
  }
  if (auto it = query.find("claims"); it != query.end()) {
    const char* kShape = "claims must be an object of strings or lists of strings";
    if (!it->is_object() || !args.request_principal) {
      return absl::InvalidArgumentError(
          it->is_object() ? "claims need request_principal (a verified JWT)" : kShape);
    }
    for (const auto& [name, value] : it->items()) {
      for (const auto& v : value.is_array() ? value : nlohmann::json::array({value})) {
        if (!v.is_string()) {
          return absl::InvalidArgumentError(kShape);
        }
        args.claims.emplace_back(name, v.get<std::string>());
      }
    }
  }
  return args;
}

int checkBatch(const Inventory& inventory, std::istream& in, std::ostream& out) {
  int errors = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    absl::Status failed;
    nlohmann::json query = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (query.is_discarded()) {
      failed = absl::InvalidArgumentError("not JSON");
    } else if (auto args = checkArgsFromJson(query); !args.ok()) {
      failed = args.status();
    } else if (auto report = runCheck(inventory, *args); !report.ok()) {
      failed = report.status();
    } else {
      out << checkJson(*report).dump() << "\n";
      continue;
    }
    ++errors;
    out << nlohmann::json{{"error", std::string(failed.message())}}.dump() << "\n";
  }
  out.flush();
  return errors;
}

}  // namespace ferry::cli
