// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "hbone/baggage.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ferry::hbone {
namespace {

// W3C Baggage: a value is baggage-octets (printable ASCII but space, '"', ',', ';', '\');
// anything else, and '%' itself, is percent-encoded.
bool plainOctet(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != '"' && c != ',' && c != ';' && c != '\\' && c != '%';
}

std::string percentEncode(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(v.size());
  for (unsigned char c : v) {
    if (plainOctet(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = static_cast<char>(absl::ascii_tolower(static_cast<unsigned char>(c)));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// A malformed escape keeps its characters as they are.
std::string percentDecode(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && i + 2 < v.size()) {
      int hi = hexValue(v[i + 1]);
      int lo = hexValue(v[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(v[i]);
  }
  return out;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
    v.remove_prefix(1);
  }
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
    v.remove_suffix(1);
  }
  return v;
}

std::string* fieldFor(Baggage& b, std::string_view key) {
  if (key == "k8s.cluster.name") {
    return &b.cluster;
  }
  if (key == "k8s.namespace.name") {
    return &b.ns;
  }
  if (key == "k8s.deployment.name" || key == "k8s.pod.name" || key == "k8s.job.name" ||
      key == "k8s.cronjob.name" || key == "k8s.statefulset.name" || key == "k8s.daemonset.name" ||
      key == "k8s.replicaset.name") {
    return &b.workload;
  }
  if (key == "k8s.serviceaccount.name") {
    return &b.service_account;
  }
  if (key == "service.name") {
    return &b.service;
  }
  if (key == "service.version") {
    return &b.revision;
  }
  if (key == "k8s.pod.label.app") {
    return &b.app;
  }
  if (key == "k8s.pod.label.version") {
    return &b.version;
  }
  return nullptr;
}

}  // namespace

bool Baggage::empty() const {
  return *this == Baggage{};
}

std::string encodeBaggage(const Baggage& b) {
  const std::string kind = b.workload_kind.empty() ? "pod" : b.workload_kind;
  const std::pair<std::string, const std::string*> members[] = {
      {"k8s.cluster.name", &b.cluster},       {"k8s.namespace.name", &b.ns},
      {"k8s." + kind + ".name", &b.workload}, {"k8s.serviceaccount.name", &b.service_account},
      {"service.name", &b.service},           {"service.version", &b.revision},
      {"k8s.pod.label.app", &b.app},          {"k8s.pod.label.version", &b.version},
  };
  std::string out;
  for (const auto& [key, value] : members) {
    if (value->empty()) {
      continue;
    }
    absl::StrAppend(&out, out.empty() ? "" : ",", key, "=", percentEncode(*value));
  }
  return out;
}

Baggage decodeBaggage(std::string_view header) {
  Baggage b;
  if (header.size() > kMaxBaggageBytes) {
    return b;
  }
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view member = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    member = member.substr(0, member.find(';'));  // properties are not ours to read
    size_t eq = member.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    std::string_view key = trim(member.substr(0, eq));
    std::string_view value = trim(member.substr(eq + 1));
    if (std::string* field = fieldFor(b, key); field != nullptr && !value.empty()) {
      *field = percentDecode(value);
    }
  }
  return b;
}

bool believeBaggage(const Baggage& b, const tls::SpiffeId& peer, std::string* why) {
  auto refuse = [&](std::string reason) {
    if (why != nullptr) {
      *why = std::move(reason);
    }
    return false;
  };
  if (b.ns != peer.ns) {
    return refuse(
        absl::StrCat("namespace \"", b.ns, "\" is not the certificate's \"", peer.ns, "\""));
  }
  if (b.service_account != peer.service_account) {
    return refuse(absl::StrCat("service account \"", b.service_account,
                               "\" is not the certificate's \"", peer.service_account, "\""));
  }
  return true;
}

}  // namespace ferry::hbone
