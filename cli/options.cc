// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "cli/options.h"

#include <charconv>
#include <map>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/admin.h"
#include "cli/inventory.h"
#include "flags/flags.h"

namespace ferry::cli {

// The flag types whose errors ferryctl words itself; each error follows the flag as typed. A
// default that is no value (port, count) reads and prints as "" (the flags library resets each
// flag from its default's text).

struct Output {
  bool json = false;
};
bool AbslParseFlag(absl::string_view text, Output* out, std::string* error) {
  if (text != "json" && text != "table") {
    *error = absl::StrCat(" must be table or json, not '", text, "'");
    return false;
  }
  out->json = text == "json";
  return true;
}
std::string AbslUnparseFlag(Output o) {
  return o.json ? "json" : "table";
}

struct Port {
  uint16_t value = 0;  // 0: not given
};
bool AbslParseFlag(absl::string_view text, Port* out, std::string* error) {
  unsigned port = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (!text.empty() &&
      (ec != std::errc() || end != text.data() + text.size() || port == 0 || port > 65535)) {
    *error = absl::StrCat(" must be a number from 1 to 65535, not '", text, "'");
    return false;
  }
  out->value = static_cast<uint16_t>(port);
  return true;
}
std::string AbslUnparseFlag(Port p) {
  return p.value == 0 ? "" : absl::StrCat(p.value);
}

struct Window {
  absl::Duration value = absl::Seconds(10);
};
bool AbslParseFlag(absl::string_view text, Window* out, std::string* error) {
  if (!absl::ParseDuration(text, &out->value)) {
    *error = absl::StrCat(" must be a duration such as 10s or 1m, not '", text, "'");
    return false;
  }
  return true;
}
std::string AbslUnparseFlag(Window w) {
  return absl::FormatDuration(w.value);
}

struct Count {
  int value = 0;  // 0: until interrupted
};
bool AbslParseFlag(absl::string_view text, Count* out, std::string* error) {
  out->value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out->value);
  if (!text.empty() && (ec != std::errc() || end != text.data() + text.size() || out->value < 1)) {
    *error = absl::StrCat(" must be a number of frames >= 1, not '", text, "'");
    return false;
  }
  return true;
}
std::string AbslUnparseFlag(Count c) {
  return c.value == 0 ? "" : absl::StrCat(c.value);
}

}  // namespace ferry::cli

using ferry::flags::Repeated;

ABSL_FLAG(std::string, manifests, "",
          "read the mesh from this folder of manifests instead of an agent's admin API");
ABSL_FLAG(std::string, admin, ferry::cli::kDefaultAdmin, "the agent's admin API, IPv4:PORT");
ABSL_FLAG(ferry::cli::Output, output, {}, "table or json");
ABSL_FLAG(ferry::cli::Port, port, {},
          "the destination port (default: the target port of the Service selecting the pod)");
ABSL_FLAG(std::string, host, "",
          "the request's host (default: that Service's hostname; CONNECT: its target HOST:PORT)");
ABSL_FLAG(std::string, trust_domain, "cluster.local", "the mesh's trust domain");
ABSL_FLAG(bool, batch, false, "read one JSON query a line on stdin, answer each with one line");
ABSL_FLAG(bool, plaintext, false, "the source has no mesh identity (a pod outside the mesh)");
ABSL_FLAG(Repeated, header, {}, "a request header field, NAME:VALUE");
ABSL_FLAG(std::string, request_principal, "",
          "the request carries a valid JWT with this ISS/SUB (after RequestAuthentication)");
ABSL_FLAG(Repeated, claim, {},
          "a string claim of that JWT, NAME=VALUE (repeat for a list; nested as outer][inner)");
ABSL_FLAG(Repeated, audience, {}, "an audience (aud) of that JWT");
ABSL_FLAG(std::string, presenter, "", "the presenter (azp) of that JWT");
ABSL_FLAG(Repeated, agents, {},
          "the agents' metrics endpoints, IPv4:PORT[,IPv4:PORT...] (default 127.0.0.1:15020)");
ABSL_FLAG(std::string, prometheus, "", "ask this Prometheus server, http://HOST:PORT, instead");
ABSL_FLAG(std::string, namespace, "", "only this namespace (default: every namespace)");
ABSL_FLAG(ferry::cli::Window, window, {}, "the window the figures cover");
ABSL_FLAG(std::string, reporter, "destination", "whose view: destination or source");
ABSL_FLAG(bool, watch, false, "print a frame every window until interrupted (or --count)");
ABSL_FLAG(ferry::cli::Count, count, {}, "with --watch: this many frames");

namespace ferry::cli {
namespace {

constexpr char kSourceFile[] = "cli/options.cc";

const std::vector<std::string> kListing = {"manifests", "admin", "output"};

// Each command's flags.
const std::map<std::string, flags::Command, std::less<>>& commands() {
  static const auto* table = [] {
    auto* t = new std::map<std::string, flags::Command, std::less<>>;
    auto add = [&](const std::string& name, std::vector<std::string> names,
                   std::map<char, std::string> shorts = {{'o', "output"}}) {
      (*t)[name] = flags::Command{name, kSourceFile, std::move(names), std::move(shorts)};
    };
    add("status", {"admin", "output"});
    add("certs", {"admin", "output"});
    for (const char* listing :
         {"workloads", "services", "policies", "ratelimits", "requestauthentications"}) {
      add(listing, kListing);
    }
    add("check", {"manifests", "admin", "output", "port", "host", "trust-domain", "batch",
                  "plaintext", "header", "request-principal", "claim", "audience", "presenter"});
    add("stat",
        {"agents", "prometheus", "namespace", "window", "count", "reporter", "watch", "output"},
        {{'o', "output"}, {'n', "namespace"}});
    return t;
  }();
  return *table;
}

absl::Status usage(std::string message) {
  return absl::InvalidArgumentError(std::move(message));
}

// NAME<sep>VALUE pairs of a repeated flag; the error names the flag and the form.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> pairs(const Repeated& r, char sep,
                                                                       const std::string& flag,
                                                                       const std::string& form) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& v : r.values) {
    auto at = v.find(sep);
    if (at == std::string::npos || at == 0) {
      return usage(absl::StrCat(flag, " must be ", form, ", not '", v, "'"));
    }
    out.emplace_back(v.substr(0, at), v.substr(at + 1));
  }
  return out;
}

absl::Status readStat(const flags::CommandLine& line, Options& o) {
  StatArgs& s = o.stat;
  for (const std::string& v : absl::GetFlag(FLAGS_agents).values) {
    for (absl::string_view a : absl::StrSplit(v, ',', absl::SkipEmpty())) {
      s.agents.emplace_back(a);
    }
  }
  if (line.given.contains("prometheus")) {
    s.prometheus = absl::GetFlag(FLAGS_prometheus);
  }
  s.options.ns = absl::GetFlag(FLAGS_namespace);
  s.options.reporter = absl::GetFlag(FLAGS_reporter);
  s.window = absl::GetFlag(FLAGS_window).value;
  s.count = absl::GetFlag(FLAGS_count).value;
  s.watch = absl::GetFlag(FLAGS_watch);
  s.json = absl::GetFlag(FLAGS_output).json;
  if (o.positional.size() != 1 ||
      (o.positional[0] != "services" && o.positional[0] != "workloads")) {
    return usage("stat takes services or workloads" +
                 (o.positional.empty() ? std::string() : ", not '" + o.positional[0] + "'"));
  }
  s.options.by = o.positional[0] == "workloads" ? StatBy::kWorkload : StatBy::kService;
  if (auto e = validateStatArgs(s)) {
    return usage(*e);
  }
  return absl::OkStatus();
}

absl::Status readCheck(const flags::CommandLine& line, Options& o) {
  CheckArgs& c = o.check;
  if (absl::GetFlag(FLAGS_port).value != 0) {
    c.port = absl::GetFlag(FLAGS_port).value;
  }
  if (line.given.contains("host")) {
    c.host = absl::GetFlag(FLAGS_host);
  }
  c.trust_domain = absl::GetFlag(FLAGS_trust_domain);
  c.plaintext = absl::GetFlag(FLAGS_plaintext);
  o.batch = absl::GetFlag(FLAGS_batch);
  auto headers = pairs(absl::GetFlag(FLAGS_header), ':', "--header", "NAME:VALUE");
  auto claims = pairs(absl::GetFlag(FLAGS_claim), '=', "--claim", "NAME=VALUE");
  if (!headers.ok() || !claims.ok()) {
    return headers.ok() ? claims.status() : headers.status();
  }
  c.headers = *std::move(headers);
  c.claims = *std::move(claims);
  if (line.given.contains("request-principal")) {
    c.request_principal = absl::GetFlag(FLAGS_request_principal);
  }
  c.audiences = absl::GetFlag(FLAGS_audience).values;
  c.presenter = absl::GetFlag(FLAGS_presenter);
  if (!c.request_principal && (!c.claims.empty() || !c.audiences.empty() || !c.presenter.empty())) {
    return usage("--claim, --audience and --presenter describe a JWT: give --request-principal");
  }
  if (o.batch) {
    return o.positional.empty()
               ? absl::OkStatus()
               : usage("check --batch reads its queries from stdin and takes no arguments");
  }
  if (o.positional.size() != 2 && o.positional.size() != 4) {
    return usage(absl::StrCat("check takes <source> <destination> [METHOD PATH], got ",
                              o.positional.size(), " argument(s)"));
  }
  auto src = parsePodName(o.positional[0]);
  auto dst = parsePodName(o.positional[1]);
  if (!src || !dst) {
    return usage("pods are named namespace/name, not '" +
                 (src ? o.positional[1] : o.positional[0]) + "'");
  }
  c.source = *src;
  c.destination = *dst;
  if (o.positional.size() == 4) {
    // CONNECT's target is an authority (--host), so its PATH is empty, as the agent sees it.
    const bool connect = o.positional[2] == "CONNECT";
    if (connect ? !o.positional[3].empty() : !o.positional[3].starts_with("/")) {
      return usage(connect ? "CONNECT has no PATH: give \"\" and the target as --host"
                           : "PATH must start with '/', not '" + o.positional[3] + "'");
    }
    c.method = o.positional[2];
    c.path = o.positional[3];
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Options> parseOptions(const std::vector<std::string>& args) {
  if (args.empty()) {
    return usage("no command given");
  }
  Options o;
  o.command = args[0];
  auto command = commands().find(o.command);
  if (command == commands().end()) {
    return usage("unknown command '" + o.command + "'");
  }
  auto line = flags::parseCommand({args.begin() + 1, args.end()}, command->second);
  if (!line.ok()) {
    return line.status();
  }
  // These take a value that is not empty.
  for (const std::string name : {"prometheus", "namespace", "reporter", "trust-domain",
                                 "request-principal", "port", "count"}) {
    const absl::CommandLineFlag* flag =
        absl::FindCommandLineFlag(absl::StrReplaceAll(name, {{"-", "_"}}));
    if (line->given.contains(name) && flag->CurrentValue().empty()) {
      return usage("--" + name + " needs a value");
    }
  }
  for (const std::string& v : absl::GetFlag(FLAGS_agents).values) {
    if (v.empty()) {
      return usage("--agents needs a value");
    }
  }
  o.positional = line->positional;
  if (line->given.contains("manifests")) {
    o.manifests = absl::GetFlag(FLAGS_manifests);
  }
  if (line->given.contains("admin")) {
    o.admin = absl::GetFlag(FLAGS_admin);
  }
  o.json = absl::GetFlag(FLAGS_output).json;
  if (o.manifests && o.admin) {
    return usage("--manifests and --admin are two sources: give one");
  }
  absl::Status s = absl::OkStatus();
  if (o.command == "stat") {
    s = readStat(*line, o);
  } else if (o.command == "check") {
    s = readCheck(*line, o);
  } else if (!o.positional.empty()) {
    s = usage(o.command + " takes no arguments, got '" + o.positional[0] + "'");
  }
  if (!s.ok()) {
    return s;
  }
  return o;
}

std::string commandHelp(const std::string& head, std::string_view command) {
  auto it = commands().find(command);
  return it == commands().end() ? std::string() : flags::help(head, it->second);
}

}  // namespace ferry::cli
