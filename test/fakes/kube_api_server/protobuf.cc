// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "fakes/kube_api_server/protobuf.h"

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;

// One decoded protobuf field: a varint or the bytes of a length-delimited field.
struct Field {
  uint64_t varint = 0;
  std::string bytes;
};
using Message = std::multimap<int, Field>;

bool readVarint(const std::string& in, size_t& pos, uint64_t& out) {
  out = 0;
  for (int shift = 0; shift < 64 && pos < in.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in[pos++]);
    out |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<Message> parse(const std::string& in) {
  Message msg;
  size_t pos = 0;
  while (pos < in.size()) {
    uint64_t tag = 0;
    if (!readVarint(in, pos, tag)) {
      return absl::InvalidArgumentError("truncated protobuf tag");
    }
    Field f;
    switch (tag & 7) {
      case 0:
        if (!readVarint(in, pos, f.varint)) {
          return absl::InvalidArgumentError("truncated protobuf varint");
        }
        break;
      case 1:
      case 5: {
        const size_t width = (tag & 7) == 1 ? 8 : 4;
        if (pos + width > in.size()) {
          return absl::InvalidArgumentError("truncated protobuf fixed field");
        }
        f.bytes = in.substr(pos, width);
        pos += width;
        break;
      }
      case 2: {
        uint64_t len = 0;
        if (!readVarint(in, pos, len) || len > in.size() - pos) {
          return absl::InvalidArgumentError("truncated protobuf length-delimited field");
        }
        f.bytes = in.substr(pos, len);
        pos += len;
        break;
      }
      default:
        return absl::InvalidArgumentError("unsupported protobuf wire type");
    }
    msg.emplace(static_cast<int>(tag >> 3), std::move(f));
  }
  return msg;
}

std::string str(const Message& m, int field) {
  auto it = m.find(field);
  return it == m.end() ? "" : it->second.bytes;
}

std::vector<std::string> repeated(const Message& m, int field) {
  std::vector<std::string> out;
  for (auto [it, end] = m.equal_range(field); it != end; ++it) {
    out.push_back(it->second.bytes);
  }
  return out;
}

// map<string, string|bytes>: repeated entries {1: key, 2: value}; bytes values as base64.
absl::StatusOr<json> stringMap(const Message& m, int field, bool base64) {
  json out = json::object();
  for (const std::string& entry : repeated(m, field)) {
    absl::StatusOr<Message> kv = parse(entry);
    if (!kv.ok()) {
      return kv.status();
    }
    out[str(*kv, 1)] = base64 ? absl::Base64Escape(str(*kv, 2)) : str(*kv, 2);
  }
  return out;
}

absl::StatusOr<json> objectMeta(const std::string& bytes) {
  absl::StatusOr<Message> m = parse(bytes);
  if (!m.ok()) {
    return m.status();
  }
  json meta = json::object();
  const char* const kStrings[] = {nullptr, "name", "generateName", "namespace"};
  for (int f = 1; f <= 3; ++f) {
    if (!str(*m, f).empty()) {
      meta[kStrings[f]] = str(*m, f);
    }
  }
  for (auto [field, key] : {std::pair{11, "labels"}, std::pair{12, "annotations"}}) {
    if (m->count(field)) {
      absl::StatusOr<json> map = stringMap(*m, field, false);
      if (!map.ok()) {
        return map.status();
      }
      meta[key] = *map;
    }
  }
  if (m->count(14)) {
    meta["finalizers"] = repeated(*m, 14);
  }
  return meta;
}

}  // namespace

absl::StatusOr<json> decodeProtobufObject(const std::string& body) {
  static const std::string kMagic("k8s\0", 4);
  if (body.compare(0, kMagic.size(), kMagic) != 0) {
    return absl::InvalidArgumentError("protobuf body without the k8s envelope");
  }
  absl::StatusOr<Message> unknown = parse(body.substr(kMagic.size()));
  if (!unknown.ok()) {
    return unknown.status();
  }
  absl::StatusOr<Message> type_meta = parse(str(*unknown, 1));
  if (!type_meta.ok()) {
    return type_meta.status();
  }
  const std::string kind = str(*type_meta, 2);
  json object = {{"apiVersion", str(*type_meta, 1)}, {"kind", kind}};
  absl::StatusOr<Message> raw = parse(str(*unknown, 2));
  if (!raw.ok()) {
    return raw.status();
  }
  absl::StatusOr<json> meta = objectMeta(str(*raw, 1));
  if (!meta.ok()) {
    return meta.status();
  }
  object["metadata"] = *meta;
  if (kind == "Namespace") {
    absl::StatusOr<Message> spec = parse(str(*raw, 2));
    if (spec.ok() && spec->count(1)) {
      object["spec"] = {{"finalizers", repeated(*spec, 1)}};
    }
  } else if (kind == "ConfigMap" || kind == "Secret") {
    const bool secret = kind == "Secret";
    for (auto [field, key, base64] :
         {std::tuple{2, "data", secret},
          std::tuple{secret ? 4 : 3, secret ? "stringData" : "binaryData", !secret}}) {
      if (raw->count(field)) {
        absl::StatusOr<json> map = stringMap(*raw, field, base64);
        if (!map.ok()) {
          return map.status();
        }
        object[key] = *map;
      }
    }
    if (secret && !str(*raw, 3).empty()) {
      object["type"] = str(*raw, 3);
    }
  } else if (kind != "ServiceAccount") {
    return absl::UnimplementedError(
        absl::StrCat("the fake API server decodes no protobuf ", kind, "; send JSON"));
  }
  return object;
}

}  // namespace ferry::fakes
