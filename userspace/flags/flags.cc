// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "flags/flags.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace ferry::flags {
namespace {

std::string dashed(absl::string_view name) {
  return absl::StrReplaceAll(name, {{"_", "-"}});
}

using FlagMap = std::map<std::string, absl::CommandLineFlag*>;

// The binary's flags by their dashed names (Abseil's own flags, defined elsewhere, are left out).
FlagMap binaryFlags(absl::string_view source_file) {
  FlagMap out;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), source_file)) {
      out[dashed(name)] = flag;
    }
  }
  return out;
}

// Abseil's "Illegal value 'v' specified for flag 'x'; <the type's reason>": the reason.
std::string reason(const std::string& error, absl::string_view value) {
  if (auto semi = error.find("; "); semi != std::string::npos) {
    return error.substr(semi + 2);
  }
  return absl::StrCat(": \"", value, "\" is not a valid value");
}

// Repeated's values travel to its AbslParseFlag as one text, each value behind this separator.
constexpr char kRepeatSeparator = '\x1f';

// How one command line is read: parse() (a binary's flags) or parseCommand() (a subcommand's).
struct Grammar {
  const FlagMap& flags;
  const std::map<char, std::string>* short_names = nullptr;  // none
  std::vector<std::string>* positional = nullptr;            // refused
  absl::string_view command;                                 // "": a binary's errors
};

absl::Status unknownFlag(absl::string_view spelling, absl::string_view command) {
  return absl::InvalidArgumentError(
      command.empty() ? absl::StrCat("unknown flag ", spelling)
                      : absl::StrCat("unknown flag '", spelling, "' for ", command));
}

absl::Status read(const std::vector<std::string>& args, const Grammar& g,
                  std::set<std::string>* given) {
  std::string error;
  for (const auto& [name, flag] : g.flags) {
    flag->ParseFrom(flag->DefaultValue(), &error);
  }
  std::map<std::string, std::string>
      repeated;  // dashed name -> its values, each behind the separator
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool is_long = arg.starts_with("--") && arg.size() > 2;
    const bool is_short =
        g.short_names != nullptr && arg.size() > 1 && arg[0] == '-' && arg[1] != '-';
    if (!is_long && !is_short) {
      if (g.positional == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected argument \"", arg, "\": expected --name=value"));
      }
      g.positional->push_back(arg);
      continue;
    }
    std::string spelling = arg;
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); is_long && eq != std::string::npos) {
      spelling = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    std::string name = dashed(spelling.substr(2));
    if (is_short) {
      auto s = arg.size() == 2 ? g.short_names->find(arg[1]) : g.short_names->end();
      if (s == g.short_names->end()) {
        return unknownFlag(arg, g.command);
      }
      name = s->second;
    }
    auto it = g.flags.find(name);
    if (it == g.flags.end()) {
      return unknownFlag(spelling, g.command);
    }
    absl::CommandLineFlag* flag = it->second;
    if (!has_value && flag->IsOfType<bool>()) {
      value = "true";
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(spelling, " needs a value"));
      }
      value = args[++i];
    }
    if (given != nullptr) {
      given->insert(name);
    }
    if (flag->IsOfType<Repeated>()) {
      absl::StrAppend(&repeated[name], std::string(1, kRepeatSeparator), value);
    } else if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(spelling, reason(error, value)));
    }
  }
  for (const auto& [name, values] : repeated) {
    g.flags.at(name)->ParseFrom(values, &error);  // a Repeated takes any text
  }
  return absl::OkStatus();
}

std::string listFlags(absl::string_view head, const FlagMap& flags,
                      const std::map<char, std::string>& short_names) {
  std::string out = absl::StrCat(head, "\nflags:\n");
  for (const auto& [name, flag] : flags) {
    std::string shorts;
    for (const auto& [letter, long_name] : short_names) {
      if (long_name == name) {
        absl::StrAppend(&shorts, "-", std::string(1, letter), ", ");
      }
    }
    const bool boolean = flag->IsOfType<bool>();
    const bool repeated = flag->IsOfType<Repeated>();
    absl::StrAppend(&out, "  ", shorts, "--", name, boolean || repeated ? "" : "=",
                    boolean || repeated ? "" : flag->DefaultValue(),
                    repeated ? "=... (may be repeated)" : "", "\n");
    for (absl::string_view line : absl::StrSplit(flag->Help(), '\n')) {
      absl::StrAppend(&out, "      ", line, "\n");
    }
  }
  return out;
}

FlagMap commandFlags(const Command& command) {
  const FlagMap all = binaryFlags(command.source_file);
  FlagMap out;
  for (const std::string& name : command.flags) {
    if (auto it = all.find(name); it != all.end()) {
      out.emplace(name, it->second);
    }
  }
  return out;
}

}  // namespace

absl::Status parse(const std::vector<std::string>& args, absl::string_view source_file) {
  const FlagMap flags = binaryFlags(source_file);
  return read(args, Grammar{.flags = flags}, nullptr);
}

std::string help(absl::string_view head, absl::string_view source_file) {
  return listFlags(head, binaryFlags(source_file), {});
}

absl::StatusOr<CommandLine> parseCommand(const std::vector<std::string>& args,
                                         const Command& command) {
  const FlagMap flags = commandFlags(command);
  CommandLine out;
  absl::Status s = read(args,
                        Grammar{.flags = flags,
                                .short_names = &command.short_names,
                                .positional = &out.positional,
                                .command = command.name},
                        &out.given);
  if (!s.ok()) {
    return s;
  }
  return out;
}

std::string help(absl::string_view head, const Command& command) {
  return listFlags(head, commandFlags(command), command.short_names);
}

bool parseInteger(absl::string_view text, int64_t min, uint64_t max, int64_t* out) {
  return absl::SimpleAtoi(text, out) && *out >= min &&
         (*out < 0 || static_cast<uint64_t>(*out) <= max);
}

bool parseInteger(absl::string_view text, int64_t min, uint64_t max, uint64_t* out) {
  return absl::SimpleAtoi(text, out) && (min <= 0 || *out >= static_cast<uint64_t>(min)) &&
         *out <= max;
}

bool AbslParseFlag(absl::string_view text, Integer* out, std::string* error) {
  if (absl::SimpleAtoi(text, &out->value)) {
    return true;
  }
  *error = absl::StrCat(": \"", text, "\" is not a number");
  return false;
}

std::string AbslUnparseFlag(Integer i) {
  return absl::StrCat(i.value);
}

bool AbslParseFlag(absl::string_view text, Real* out, std::string* error) {
  if (absl::SimpleAtod(text, &out->value)) {
    return true;
  }
  *error = absl::StrCat(": \"", text, "\" is not a number");
  return false;
}

std::string AbslUnparseFlag(Real r) {
  return absl::StrCat(r.value);
}

bool AbslParseFlag(absl::string_view text, OnOff* out, std::string* error) {
  if (text != "on" && text != "off") {
    *error = absl::StrCat(" must be on or off, got \"", text, "\"");
    return false;
  }
  out->value = text == "on";
  return true;
}

std::string AbslUnparseFlag(OnOff o) {
  return o.value ? "on" : "off";
}

bool AbslParseFlag(absl::string_view text, List* out, std::string* error) {
  out->items = absl::StrSplit(text, ',', absl::SkipEmpty());
  return true;
}

std::string AbslUnparseFlag(const List& l) {
  return absl::StrJoin(l.items, ",");
}

bool AbslParseFlag(absl::string_view text, Repeated* out, std::string* error) {
  // "" is no value; otherwise each value follows a separator (so one empty value is kept).
  out->values.clear();
  if (!text.empty()) {
    out->values = absl::StrSplit(text.substr(1), kRepeatSeparator);
  }
  return true;
}

std::string AbslUnparseFlag(const Repeated& r) {
  std::string out;
  for (const std::string& v : r.values) {
    absl::StrAppend(&out, std::string(1, kRepeatSeparator), v);
  }
  return out;
}

}  // namespace ferry::flags
