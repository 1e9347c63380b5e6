// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The binaries' flags are Abseil flags (ABSL_FLAG in each binary's flags.cc: name, type, default
// and help in one place). This library sets them from a command line and prints `--help`.
//
// Why not absl::ParseCommandLine: Ferry's flags are spelled with dashes (--log-level), which an
// ABSL_FLAG name cannot hold, and the binaries must return their own validation errors (exit 2,
// the flag named) where ParseCommandLine exits the process. So the command line is read here, one
// argument at a time, into Abseil's registry (CommandLineFlag::ParseFrom): a '-' in a flag name
// is the '_' of the ABSL_FLAG name.
//
// Accepted forms: --name=value; --name value (a flag that is not a bool); --name (a bool: true).
//
// A binary with subcommands (ferryctl) reads each command's command line with parseCommand: the
// command takes a subset of the flags, one-letter forms (-o VALUE), positional arguments among
// the flags, and flags given many times (type Repeated).

#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ferry::flags {

// Sets the flags defined in `source_file` (its path ends so, e.g. "agent/flags.cc") from `args`
// (no program name), each first reset to its default, so a second call starts afresh (tests).
// Errors: `unknown flag --x`, `--x needs a value`, `unexpected argument "y"`, or the flag's own
// (see the types below), each naming the flag.
absl::Status parse(const std::vector<std::string>& args, absl::string_view source_file);

// `head` (the usage line), then every flag defined in `source_file`, sorted by name:
//   --name=DEFAULT
//       help
std::string help(absl::string_view head, absl::string_view source_file);

// One command of a binary with subcommands: the flags it takes (dashed names of flags defined in
// `source_file`) and their one-letter forms.
struct Command {
  std::string name;  // in errors: "unknown flag '--x' for NAME"
  std::string source_file;
  std::vector<std::string> flags;
  std::map<char, std::string> short_names;  // 'o' -> "output": -o VALUE is --output=VALUE
};

struct CommandLine {
  std::vector<std::string> positional;  // the arguments that are not flags, in order
  std::set<std::string> given;          // the flags given (dashed names)
};

// Sets `command`'s flags from `args` (no program or command name), each first reset to its
// default, as parse() does, and also accepts -x VALUE for a short name and arguments that are not
// flags (returned). A flag of type Repeated keeps every value given. Errors: `unknown flag '-x'
// for NAME`, `-x needs a value`, or the flag's own, each naming the flag as it was spelled.
absl::StatusOr<CommandLine> parseCommand(const std::vector<std::string>& args,
                                         const Command& command);

// `head`, then the command's flags as help() lists them, with their short forms.
std::string help(absl::string_view head, const Command& command);

// Flag types whose parse errors read "--name: \"value\" is not a number in [0, 256]" (the error
// text of a type's AbslParseFlag is the rest of the message after the flag's name).

// An integer in [kMin, kMax] (by default the type's range): "is not a number in [0, 256]".
template <typename T, int64_t kMin = std::numeric_limits<T>::min(),
          uint64_t kMax = std::numeric_limits<T>::max()>
struct Number {
  T value{};
};

// Parses an integer of `text` within [min, max] (a plain function: no warning on a limit that
// is the type's own).
bool parseInteger(absl::string_view text, int64_t min, uint64_t max, int64_t* out);
bool parseInteger(absl::string_view text, int64_t min, uint64_t max, uint64_t* out);

template <typename T, int64_t kMin, uint64_t kMax>
bool AbslParseFlag(absl::string_view text, Number<T, kMin, kMax>* out, std::string* error) {
  std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t> v = 0;
  if (parseInteger(text, kMin, kMax, &v)) {
    out->value = static_cast<T>(v);
    return true;
  }
  *error = absl::StrCat(": \"", text, "\" is not a number in [", kMin, ", ", kMax, "]");
  return false;
}

template <typename T, int64_t kMin, uint64_t kMax>
std::string AbslUnparseFlag(Number<T, kMin, kMax> n) {
  return absl::StrCat(n.value);
}

// An int whose range the binary's validation checks: "is not a number".
struct Integer {
  int value = 0;
};
bool AbslParseFlag(absl::string_view text, Integer* out, std::string* error);
std::string AbslUnparseFlag(Integer i);

// A real number (ranges are checked by the binary's validation).
struct Real {
  double value = 0;
};
bool AbslParseFlag(absl::string_view text, Real* out, std::string* error);
std::string AbslUnparseFlag(Real r);

// on | off.
struct OnOff {
  bool value = false;
};
bool AbslParseFlag(absl::string_view text, OnOff* out, std::string* error);
std::string AbslUnparseFlag(OnOff o);

// A list a,b,c; empty items are dropped.
struct List {
  std::vector<std::string> items;
};
bool AbslParseFlag(absl::string_view text, List* out, std::string* error);
std::string AbslUnparseFlag(const List& l);

// A flag that may be given many times (--header A --header B): every value, in order.
struct Repeated {
  std::vector<std::string> values;
};
bool AbslParseFlag(absl::string_view text, Repeated* out, std::string* error);
std::string AbslUnparseFlag(const Repeated& r);

}  // namespace ferry::flags
