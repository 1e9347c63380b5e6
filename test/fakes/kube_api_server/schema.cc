// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "fakes/kube_api_server/schema.h"

#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string typeOf(const json& v) {
  if (v.is_object()) {
    return "object";
  }
  if (v.is_array()) {
    return "array";
  }
  if (v.is_string()) {
    return "string";
  }
  if (v.is_boolean()) {
    return "boolean";
  }
  if (v.is_number_integer() || v.is_number_unsigned()) {
    return "integer";
  }
  return v.is_number() ? "number" : "null";
}

class Checker {
 public:
  explicit Checker(SchemaCheck& out) : out_(out) {}

  void check(const json& schema, json& value, const std::string& path) {
    if (!schema.is_object()) {
      return;
    }
    if (value.is_null() && schema.value("nullable", false)) {
      return;
    }
    const std::string type = schema.value("type", "");
    const std::string actual = typeOf(value);
    const bool int_or_string = schema.value("x-kubernetes-int-or-string", false);
    if (!type.empty() && type != actual && !(type == "number" && actual == "integer") &&
        !(int_or_string && (actual == "integer" || actual == "string"))) {
      fail(path, "FieldValueTypeInvalid",
           absl::StrCat("Invalid value: \"", actual, "\": ", path, " in body must be of type ",
                        type, ": \"", actual, "\""));
      return;
    }
    if (schema.contains("enum") &&
        std::find(schema["enum"].begin(), schema["enum"].end(), value) == schema["enum"].end()) {
      std::vector<std::string> allowed;
      for (const json& e : schema["enum"]) {
        allowed.push_back(e.dump());
      }
      fail(path, "FieldValueNotSupported",
           absl::StrCat("Unsupported value: ", value.dump(),
                        ": supported values: ", absl::StrJoin(allowed, ", ")));
    }
    if (value.is_string()) {
      checkString(schema, value.get<std::string>(), path);
    } else if (value.is_number()) {
      if (schema.contains("minimum") && value < schema["minimum"]) {
        fail(
            path, "FieldValueInvalid",
            absl::StrCat("Invalid value: ", value.dump(), ": ", path,
                         " in body should be greater than or equal to ", schema["minimum"].dump()));
      }
      if (schema.contains("maximum") && value > schema["maximum"]) {
        fail(path, "FieldValueInvalid",
             absl::StrCat("Invalid value: ", value.dump(), ": ", path,
                          " in body should be less than or equal to ", schema["maximum"].dump()));
      }
    } else if (value.is_array()) {
      if (schema.contains("maxItems") && value.size() > schema["maxItems"].get<size_t>()) {
        fail(path, "FieldValueTooMany",
             absl::StrCat("Too many: ", value.size(), ": must have at most ",
                          schema["maxItems"].dump(), " items"));
      }
      if (schema.contains("minItems") && value.size() < schema["minItems"].get<size_t>()) {
        fail(path, "FieldValueInvalid",
             absl::StrCat("Invalid value: ", value.size(), ": ", path,
                          " in body should have at "
                          "least ",
                          schema["minItems"].dump(), " items"));
      }
      for (size_t i = 0; i < value.size(); ++i) {
        check(schema.value("items", json()), value[i], absl::StrCat(path, "[", i, "]"));
      }
    } else if (value.is_object()) {
      checkObject(schema, value, path);
    }
  }

 private:
  void fail(const std::string& path, const char* reason, std::string message) {
    out_.errors.push_back({path, reason, std::move(message)});
  }

  void checkString(const json& schema, const std::string& s, const std::string& path) {
    if (schema.contains("maxLength") && s.size() > schema["maxLength"].get<size_t>()) {
      fail(path, "FieldValueTooLong",
           absl::StrCat("Too long: may not be more than ", schema["maxLength"].dump(), " bytes"));
    }
    if (schema.contains("minLength") && s.size() < schema["minLength"].get<size_t>()) {
      fail(path, "FieldValueInvalid",
           absl::StrCat("Invalid value: \"", s, "\": ", path, " in body should be at least ",
                        schema["minLength"].dump(), " chars long"));
    }
    if (schema.contains("pattern")) {
      const std::string pattern = schema["pattern"].get<std::string>();
      bool matched = false;
      try {
        matched = std::regex_search(s, std::regex(pattern));
      } catch (const std::regex_error&) {
        matched = true;  // a Go (RE2) pattern std::regex cannot read is not enforced
      }
      if (!matched) {
        fail(path, "FieldValueInvalid",
             absl::StrCat("Invalid value: \"", s, "\": ", path, " in body should match '", pattern,
                          "'"));
      }
    }
  }

  void checkObject(const json& schema, json& value, const std::string& path) {
    const bool preserve = schema.value("x-kubernetes-preserve-unknown-fields", false);
    const json properties = schema.value("properties", json::object());
    const json additional = schema.value("additionalProperties", json());
    if (schema.contains("maxProperties") && value.size() > schema["maxProperties"].get<size_t>()) {
      fail(path, "FieldValueTooMany",
           absl::StrCat("Too many: ", value.size(), ": must have at most ",
                        schema["maxProperties"].dump(), " items"));
    }
    for (const auto& [name, sub] : properties.items()) {
      if (!value.contains(name) && sub.is_object() && sub.contains("default")) {
        value[name] = sub["default"];
      }
    }
    for (const std::string& name : schema.value("required", std::vector<std::string>{})) {
      if (!value.contains(name)) {
        fail(join(path, name), "FieldValueRequired", "Required value");
      }
    }
    if (schema.contains("anyOf")) {
      bool any = false;
      for (const json& alt : schema["anyOf"]) {
        bool all = true;
        for (const std::string& name : alt.value("required", std::vector<std::string>{})) {
          all = all && value.contains(name);
        }
        any = any || all;
      }
      if (!any) {
        fail(path, "FieldValueInvalid",
             absl::StrCat("Invalid value: \"object\": ", path,
                          " in body must match at least one schema in anyOf"));
      }
    }
    for (auto it = value.begin(); it != value.end();) {
      const std::string name = it.key();
      const std::string here = join(path, name);
      if (path.empty() && (name == "apiVersion" || name == "kind" || name == "metadata")) {
        ++it;
      } else if (properties.contains(name)) {
        check(properties[name], it.value(), here);
        ++it;
      } else if (additional.is_object()) {
        check(additional, it.value(), here);
        ++it;
      } else if (preserve || additional == true) {
        ++it;
      } else {
        out_.unknown_fields.push_back(here);
        it = value.erase(it);
      }
    }
  }

  SchemaCheck& out_;
};

}  // namespace

SchemaCheck checkAgainstSchema(const json& schema, json& object) {
  SchemaCheck out;
  Checker(out).check(schema, object, "");
  return out;
}

}  // namespace ferry::fakes
