// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "flags/flags.h"

#include <catch2/catch.hpp>

#include <set>

#include "absl/flags/flag.h"

namespace {

using Port = ferry::flags::Number<uint16_t>;
using Small = ferry::flags::Number<int, 1, 10>;

}  // namespace

ABSL_FLAG(std::string, test_name, "default name", "a string");
ABSL_FLAG(bool, test_switch, false, "a bool");
ABSL_FLAG(Port, test_port, {15000}, "a port");
ABSL_FLAG(Small, test_small, {3}, "one to ten");
ABSL_FLAG(ferry::flags::Integer, test_int, {-1}, "any int");
ABSL_FLAG(ferry::flags::OnOff, test_on_off, {true}, "on or off");
ABSL_FLAG(ferry::flags::Real, test_real, {0.5}, "a real");
ABSL_FLAG(ferry::flags::List, test_list, (ferry::flags::List{{"a", "b"}}),
          "a list\nover two lines");

namespace ferry::flags {
namespace {

constexpr char kFile[] = "flags/flags_test.cc";

TEST_CASE("flags: every accepted form sets the Abseil flag, a dash standing for an underscore",
          "[flags]") {
  REQUIRE(parse({"--test-name=x", "--test_port", "8080", "--test-switch", "--test-small=10",
                 "--test-int=-7", "--test-on-off=off", "--test-real=0.25", "--test-list=c,,d"},
                kFile)
              .ok());
  CHECK(absl::GetFlag(FLAGS_test_name) == "x");
  CHECK(absl::GetFlag(FLAGS_test_port).value == 8080);
  CHECK(absl::GetFlag(FLAGS_test_switch));
  CHECK(absl::GetFlag(FLAGS_test_small).value == 10);
  CHECK(absl::GetFlag(FLAGS_test_int).value == -7);
  CHECK_FALSE(absl::GetFlag(FLAGS_test_on_off).value);
  CHECK(absl::GetFlag(FLAGS_test_real).value == 0.25);
  CHECK(absl::GetFlag(FLAGS_test_list).items == std::vector<std::string>{"c", "d"});

  // A second parse starts from the defaults, not from the last command line.
  REQUIRE(parse({"--test-switch=false"}, kFile).ok());
  CHECK(absl::GetFlag(FLAGS_test_name) == "default name");
  CHECK(absl::GetFlag(FLAGS_test_port).value == 15000);
  CHECK_FALSE(absl::GetFlag(FLAGS_test_switch));
  CHECK(absl::GetFlag(FLAGS_test_list).items == std::vector<std::string>{"a", "b"});
  CHECK(absl::GetFlag(FLAGS_test_on_off).value);
}

TEST_CASE("flags: bad command lines are refused naming the flag", "[flags]") {
  struct Row {
    std::vector<std::string> args;
    std::string error;
  };
  for (const Row& row : std::vector<Row>{
           {{"--bogus=1"}, "unknown flag --bogus"},
           {{"stray"}, "unexpected argument \"stray\": expected --name=value"},
           {{"--"}, "unexpected argument \"--\": expected --name=value"},
           {{"--test-name"}, "--test-name needs a value"},
           {{"--test-port=65536"}, "--test-port: \"65536\" is not a number in [0, 65535]"},
           {{"--test-port=-1"}, "--test-port: \"-1\" is not a number in [0, 65535]"},
           {{"--test-small=0"}, "--test-small: \"0\" is not a number in [1, 10]"},
           {{"--test-small=x"}, "--test-small: \"x\" is not a number in [1, 10]"},
           {{"--test-int=1.5"}, "--test-int: \"1.5\" is not a number"},
           {{"--test-on-off=yes"}, "--test-on-off must be on or off, got \"yes\""},
           {{"--test-real=half"}, "--test-real: \"half\" is not a number"},
           {{"--test-switch=maybe"}, "--test-switch: \"maybe\" is not a valid value"},
           // Another file's flags are not this command line's.
           {{"--flagfile=/x"}, "unknown flag --flagfile"},
       }) {
    CAPTURE(row.args);
    absl::Status s = parse(row.args, kFile);
    REQUIRE_FALSE(s.ok());
    CHECK(std::string(s.message()) == row.error);
  }
}

TEST_CASE("flags: help lists every flag with its default and help text", "[flags]") {
  const std::string text = help("usage: test [flags]", kFile);
  CHECK(text ==
        "usage: test [flags]\n"
        "flags:\n"
        "  --test-header=... (may be repeated)\n      a header, many times\n"
        "  --test-int=-1\n      any int\n"
        "  --test-list=a,b\n      a list\n      over two lines\n"
        "  --test-name=default name\n      a string\n"
        "  --test-on-off=on\n      on or off\n"
        "  --test-port=15000\n      a port\n"
        "  --test-real=0.5\n      a real\n"
        "  --test-small=3\n      one to ten\n"
        "  --test-switch\n      a bool\n");
}

}  // namespace
}  // namespace ferry::flags

ABSL_FLAG(ferry::flags::Repeated, test_header, {}, "a header, many times");

namespace ferry::flags {
namespace {

const Command kCommand{.name = "get",
                       .source_file = "flags/flags_test.cc",
                       .flags = {"test-name", "test-switch", "test-port", "test-header"},
                       .short_names = {{'n', "test-name"}}};

TEST_CASE("flags: a command takes its own flags, short forms, positionals and repeats", "[flags]") {
  auto line = parseCommand({"a", "-n", "x", "--test-header", "h: 1", "b", "--test-switch",
                            "--test-header=", "--test-header", "h: 2", "-"},
                           kCommand);
  REQUIRE(line.ok());
  CHECK(line->positional == std::vector<std::string>{"a", "b", "-"});
  CHECK(line->given == std::set<std::string>{"test-name", "test-header", "test-switch"});
  CHECK(absl::GetFlag(FLAGS_test_name) == "x");
  CHECK(absl::GetFlag(FLAGS_test_switch));
  CHECK(absl::GetFlag(FLAGS_test_header).values == std::vector<std::string>{"h: 1", "", "h: 2"});

  // Afresh: defaults again, and nothing given.
  line = parseCommand({}, kCommand);
  REQUIRE(line.ok());
  CHECK(line->positional.empty());
  CHECK(line->given.empty());
  CHECK(absl::GetFlag(FLAGS_test_name) == "default name");
  CHECK(absl::GetFlag(FLAGS_test_header).values.empty());
}

TEST_CASE("flags: a command's bad command lines name the flag as typed", "[flags]") {
  struct Row {
    std::vector<std::string> args;
    std::string error;
  };
  for (const Row& row : std::vector<Row>{
           {{"--bogus"}, "unknown flag '--bogus' for get"},
           {{"--test-small=3"}, "unknown flag '--test-small' for get"},  // not this command's
           {{"-x"}, "unknown flag '-x' for get"},
           {{"-nx"}, "unknown flag '-nx' for get"},
           {{"-n"}, "-n needs a value"},
           {{"--test-header"}, "--test-header needs a value"},
           {{"--test-port", "x"}, "--test-port: \"x\" is not a number in [0, 65535]"},
       }) {
    CAPTURE(row.args);
    auto line = parseCommand(row.args, kCommand);
    REQUIRE_FALSE(line.ok());
    CHECK(std::string(line.status().message()) == row.error);
  }
}

TEST_CASE("flags: a command's help lists its flags with their short forms", "[flags]") {
  CHECK(help("usage: get [flags]", kCommand) ==
        "usage: get [flags]\n"
        "flags:\n"
        "  --test-header=... (may be repeated)\n      a header, many times\n"
        "  -n, --test-name=default name\n      a string\n"
        "  --test-port=15000\n      a port\n"
        "  --test-switch\n      a bool\n");
}

}  // namespace
}  // namespace ferry::flags
