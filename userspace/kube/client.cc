// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "kube/client.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry::kube {
namespace {

constexpr char kHttpStatusPayload[] = "type.ferry.dev/kube.http_status";

// The API server explains failures in a v1 Status object; surface its message.
std::string statusMessage(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j["message"].get<std::string>();
  }
  if (body.size() > 200) {
    return absl::StrCat(body.substr(0, 200), "...");
  }
  return body;
}

absl::Status httpError(long code, const std::string& what, const std::string& message) {
  const std::string text = absl::StrCat(what, ": HTTP ", code, ": ", message);
  absl::Status s;
  switch (code) {
    case 401:
      s = absl::UnauthenticatedError(text);
      break;
    case 403:
      s = absl::PermissionDeniedError(text);
      break;
    case 404:
      s = absl::NotFoundError(text);
      break;
    case 409:
      s = absl::AlreadyExistsError(text);
      break;
    case 410:
      s = absl::OutOfRangeError(text);
      break;
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
      s = absl::UnavailableError(text);
      break;
    default:
      s = absl::UnknownError(text);
      break;
  }
  s.SetPayload(kHttpStatusPayload, absl::Cord(std::to_string(code)));
  return s;
}

std::string encodeQuery(const std::string& v) {
  std::string out;
  for (unsigned char c : v) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

std::string metaString(const nlohmann::json& obj, const char* field) {
  if (obj.is_object() && obj.contains("metadata") && obj["metadata"].is_object()) {
    auto it = obj["metadata"].find(field);
    if (it != obj["metadata"].end() && it->is_string()) {
      return it->get<std::string>();
    }
  }
  return "";
}

absl::StatusOr<EventType> parseEventType(const std::string& t) {
  if (t == "ADDED")
    return EventType::kAdded;
  if (t == "MODIFIED")
    return EventType::kModified;
  if (t == "DELETED")
    return EventType::kDeleted;
  if (t == "BOOKMARK")
    return EventType::kBookmark;
  if (t == "ERROR")
    return EventType::kError;
  return absl::DataLossError(absl::StrCat("watch event of unknown type \"", t, "\""));
}

}  // namespace

const char* eventTypeName(EventType type) {
  switch (type) {
    case EventType::kAdded:
      return "ADDED";
    case EventType::kModified:
      return "MODIFIED";
    case EventType::kDeleted:
      return "DELETED";
    case EventType::kBookmark:
      return "BOOKMARK";
    case EventType::kError:
      return "ERROR";
  }
  return "?";
}

long httpStatusOf(const absl::Status& status) {
  auto p = status.GetPayload(kHttpStatusPayload);
  long code = 0;
  if (p.has_value() && absl::SimpleAtoi(std::string(*p), &code)) {
    return code;
  }
  return 0;
}

bool isGone(const absl::Status& status) {
  return httpStatusOf(status) == 410;
}

absl::StatusOr<ListPage> Client::listPage(const Resource& resource, int64_t limit,
                                          const std::string& continue_token,
                                          CancelToken* cancel) const {
  std::string path = resource.collectionPath();
  const char* sep = "?";
  if (limit > 0) {
    absl::StrAppend(&path, sep, "limit=", limit);
    sep = "&";
  }
  if (!continue_token.empty()) {
    absl::StrAppend(&path, sep, "continue=", encodeQuery(continue_token));
  }
  auto r = http_.request("GET", path, "", cancel);
  if (!r.ok()) {
    return r.status();
  }
  const std::string what = absl::StrCat("list ", resource.plural);
  if (r->status != 200) {
    return httpError(r->status, what, statusMessage(r->body));
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("items") ||
      !(j["items"].is_array() || j["items"].is_null())) {
    return absl::DataLossError(absl::StrCat(what, ": the answer is not a list object"));
  }
  ListPage page;
  page.resource_version = metaString(j, "resourceVersion");
  page.continue_token = metaString(j, "continue");
  if (j["items"].is_array()) {
    page.items.reserve(j["items"].size());
    for (auto& item : j["items"]) {
      if (!item.contains("kind")) {
        item["kind"] = resource.kind;
      }
      if (!item.contains("apiVersion")) {
        item["apiVersion"] = resource.apiVersion();
      }
      page.items.push_back(std::move(item));
    }
  }
  return page;
}

absl::StatusOr<ListResult> Client::list(const Resource& resource, int64_t page_size,
                                        CancelToken* cancel) const {
  // A continue token can expire (410) while paging; start over a few times before giving up.
  constexpr int kAttempts = 3;
  absl::Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    ListResult result;
    std::string token;
    bool restart = false;
    do {
      auto page = listPage(resource, page_size, token, cancel);
      if (!page.ok()) {
        if (isGone(page.status()) && !token.empty()) {
          last = page.status();
          restart = true;
          break;
        }
        return page.status();
      }
      if (token.empty()) {
        result.resource_version = page->resource_version;  // the snapshot every page is from
      }
      for (auto& item : page->items) {
        result.items.push_back(std::move(item));
      }
      token = page->continue_token;
    } while (!token.empty());
    if (!restart) {
      return result;
    }
  }
  return last;
}

absl::Status Client::watch(const Resource& resource, const std::string& resource_version,
                           int timeout_seconds,
                           const std::function<bool(const WatchEvent&)>& on_event,
                           CancelToken* cancel) const {
  std::string path = absl::StrCat(resource.collectionPath(), "?watch=1&allowWatchBookmarks=true");
  if (!resource_version.empty()) {
    absl::StrAppend(&path, "&resourceVersion=", encodeQuery(resource_version));
  }
  if (timeout_seconds > 0) {
    absl::StrAppend(&path, "&timeoutSeconds=", timeout_seconds);
  }
  const std::string what = absl::StrCat("watch ", resource.plural);
  std::string buffer;
  absl::Status stream_status;  // set when the stream itself says stop
  auto on_data = [&](std::string_view data) -> bool {
    buffer.append(data);
    size_t start = 0;
    for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(buffer.data() + start, nl - start);
      if (line.empty() || line == "\r") {
        continue;
      }
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("type") || !j["type"].is_string() ||
          !j.contains("object") || !j["object"].is_object()) {
        stream_status = absl::DataLossError(absl::StrCat(what, ": malformed watch event"));
        return false;
      }
      auto type = parseEventType(j["type"].get<std::string>());
      if (!type.ok()) {
        stream_status = type.status();
        return false;
      }
      if (*type == EventType::kError) {
        const auto& obj = j["object"];
        const long code =
            obj.contains("code") && obj["code"].is_number() ? obj["code"].get<long>() : 500;
        stream_status = httpError(code, what, statusMessage(obj.dump()));
        return false;
      }
      WatchEvent ev{*type, std::move(j["object"])};
      if (!ev.object.contains("kind")) {
        ev.object["kind"] = resource.kind;
      }
      if (!ev.object.contains("apiVersion")) {
        ev.object["apiVersion"] = resource.apiVersion();
      }
      if (!on_event(ev)) {
        stream_status = absl::OkStatus();
        buffer.clear();
        return false;
      }
    }
    buffer.erase(0, start);
    return true;
  };
  auto r = http_.stream(path, on_data, cancel);
  if (!stream_status.ok()) {
    return stream_status;
  }
  if (!r.ok()) {
    return r.status();
  }
  if (r->status != 200) {
    return httpError(r->status, what, statusMessage(r->body));
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> Client::call(const std::string& method, const std::string& path,
                                            const std::string& body) const {
  auto r = http_.request(method, path, body);
  if (!r.ok()) {
    return r.status();
  }
  if (r->status < 200 || r->status >= 300) {
    return httpError(r->status, absl::StrCat(method, " ", path), statusMessage(r->body));
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded()) {
    return absl::DataLossError(absl::StrCat(method, " ", path, ": the answer is not JSON"));
  }
  return j;
}

absl::StatusOr<nlohmann::json> Client::get(const Resource& resource, const std::string& ns,
                                           const std::string& name) const {
  return call("GET", resource.objectPath(ns, name), "");
}

absl::StatusOr<nlohmann::json> Client::create(const Resource& resource,
                                              const nlohmann::json& object) const {
  return call("POST", resource.collectionPath(metaString(object, "namespace")), object.dump());
}

absl::StatusOr<nlohmann::json> Client::update(const Resource& resource,
                                              const nlohmann::json& object) const {
  return call("PUT",
              resource.objectPath(metaString(object, "namespace"), metaString(object, "name")),
              object.dump());
}

absl::Status Client::remove(const Resource& resource, const std::string& ns,
                            const std::string& name) const {
  return call("DELETE", resource.objectPath(ns, name), "").status();
}

}  // namespace ferry::kube
