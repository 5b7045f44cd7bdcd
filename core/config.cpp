// Strict configs: see config.h. Values are checked as they are read, so the first bad key
// stops everything with its location; nothing downstream sees an unchecked value.
#include "core/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/utf8.h"

namespace lathe {
namespace {

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string last_component(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// Shortest decimal text that reads back as the same double (so dumps round-trip exactly).
std::string format_float(double v) {
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  // A float written as "2" would read back fine, but "2.0" tells a reader its type.
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string format_value(const ConfigValue& value) {
  struct Visitor {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return format_float(v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return v.empty() ? "\"\"" : v; }
    std::string operator()(const std::vector<std::string>& v) const { return "[" + join(v, ", ") + "]"; }
    std::string operator()(const std::vector<int64_t>& v) const {
      std::vector<std::string> s;
      for (auto x : v) s.push_back(std::to_string(x));
      return "[" + join(s, ", ") + "]";
    }
  };
  return std::visit(Visitor{}, value);
}

std::string range_text(const ConfigKey& k) {
  const auto num = [&](double v) {
    return k.type == ConfigType::Float ? format_float(v) : std::to_string(static_cast<int64_t>(v));
  };
  if (k.min && k.max) return "[" + num(*k.min) + ", " + num(*k.max) + "]";
  if (k.min) return ">= " + num(*k.min);
  if (k.max) return "<= " + num(*k.max);
  return "";
}

// Reading one YAML node as a declared key; `where` is "FILE:LINE" or "command line".
class ValueReader {
 public:
  ValueReader(const ConfigKey& key, const std::string& where) : key_(key), where_(where) {}

  ConfigValue read(const YAML::Node& node) const {
    switch (key_.type) {
      case ConfigType::Int: return check_range(read_int(scalar(node)));
      case ConfigType::Float: return check_range(read_float(scalar(node)));
      case ConfigType::Bool: return read_bool(scalar(node));
      case ConfigType::String: return check_choice(read_string(node));
      case ConfigType::StringList: {
        std::vector<std::string> out;
        for (const auto& item : sequence(node)) out.push_back(check_choice(read_string(item)));
        return out;
      }
      case ConfigType::IntList: {
        std::vector<int64_t> out;
        for (const auto& item : sequence(node)) out.push_back(check_range(read_int(scalar(item))));
        return out;
      }
    }
    return {};
  }

 private:
  [[noreturn]] void error(const std::string& what) const { fail(where_ + ": " + key_.key + ": " + what); }

  std::string describe(const YAML::Node& node) const {
    if (node.IsMap()) return "a mapping";
    if (node.IsSequence()) return "a list";
    if (node.IsNull()) return "nothing";
    return "\"" + node.Scalar() + "\"";
  }

  std::string scalar(const YAML::Node& node) const {
    if (!node.IsScalar()) error("expected " + config_type_name(key_.type) + ", got " + describe(node));
    return node.Scalar();
  }

  std::vector<YAML::Node> sequence(const YAML::Node& node) const {
    std::vector<YAML::Node> out;
    if (node.IsNull()) return out;  // `key:` or `key: ~` = empty list
    if (!node.IsSequence()) error("expected a " + config_type_name(key_.type) + " like [a, b], got " + describe(node));
    for (const auto& item : node) out.push_back(item);
    return out;
  }

  std::string read_string(const YAML::Node& node) const {
    if (node.IsNull()) return "";
    if (!node.IsScalar()) error("expected a string, got " + describe(node));
    // yaml-cpp passes invalid bytes through, but the run folder's config.yaml would read them
    // back as other characters, and a resumed run would see a changed config.
    if (!is_valid_utf8(node.Scalar())) error("is not valid UTF-8 text");
    return node.Scalar();
  }

  int64_t read_int(const std::string& text) const {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE)
      error("expected an int, got \"" + text + "\"");
    return v;
  }

  double read_float(const std::string& text) const {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
      error("expected a float, got \"" + text + "\"");
    return v;
  }

  bool read_bool(const std::string& text) const {
    if (text == "true" || text == "True") return true;
    if (text == "false" || text == "False") return false;
    error("expected true or false, got \"" + text + "\"");
  }

  template <typename T>
  T check_range(T v) const {
    if ((key_.min && v < *key_.min) || (key_.max && v > *key_.max))
      error(format_value(ConfigValue(v)) + " is out of range (valid: " + range_text(key_) + ")");
    return v;
  }

  std::string check_choice(const std::string& v) const {
    if (!key_.choices.empty() && std::find(key_.choices.begin(), key_.choices.end(), v) == key_.choices.end())
      error("\"" + v + "\" is not a valid choice (valid: " + join(key_.choices, ", ") + ")");
    return v;
  }

  const ConfigKey& key_;
  const std::string& where_;
};

}  // namespace

std::string config_type_name(ConfigType type) {
  switch (type) {
    case ConfigType::Int: return "int";
    case ConfigType::Float: return "float";
    case ConfigType::Bool: return "bool";
    case ConfigType::String: return "string";
    case ConfigType::StringList: return "string list";
    case ConfigType::IntList: return "int list";
  }
  return "?";
}

ConfigSchema& ConfigSchema::add(ConfigKey key) {
  if (find(key.key)) fail("config key " + key.key + " is declared twice");
  for (const auto& k : keys_)  // "a.b" may not be both a value and a section
    if (k.key.rfind(key.key + ".", 0) == 0 || key.key.rfind(k.key + ".", 0) == 0)
      fail("config key " + key.key + " clashes with " + k.key);
  keys_.push_back(std::move(key));
  return *this;
}

ConfigSchema& ConfigSchema::add_int(const std::string& key, int64_t default_value, const std::string& doc,
                                    std::optional<double> min, std::optional<double> max) {
  return add({key, ConfigType::Int, default_value, doc, min, max, {}});
}
ConfigSchema& ConfigSchema::add_float(const std::string& key, double default_value, const std::string& doc,
                                      std::optional<double> min, std::optional<double> max) {
  return add({key, ConfigType::Float, default_value, doc, min, max, {}});
}
ConfigSchema& ConfigSchema::add_bool(const std::string& key, bool default_value, const std::string& doc) {
  return add({key, ConfigType::Bool, default_value, doc, std::nullopt, std::nullopt, {}});
}
ConfigSchema& ConfigSchema::add_string(const std::string& key, const std::string& default_value,
                                       const std::string& doc, const std::vector<std::string>& choices) {
  return add({key, ConfigType::String, default_value, doc, std::nullopt, std::nullopt, choices});
}
ConfigSchema& ConfigSchema::add_string_list(const std::string& key, const std::vector<std::string>& default_value,
                                            const std::string& doc, const std::vector<std::string>& choices) {
  return add({key, ConfigType::StringList, default_value, doc, std::nullopt, std::nullopt, choices});
}
ConfigSchema& ConfigSchema::add_int_list(const std::string& key, const std::vector<int64_t>& default_value,
                                         const std::string& doc, std::optional<double> min,
                                         std::optional<double> max) {
  return add({key, ConfigType::IntList, default_value, doc, min, max, {}});
}

const ConfigKey* ConfigSchema::find(const std::string& key) const {
  for (const auto& k : keys_)
    if (k.key == key) return &k;
  return nullptr;
}

std::string ConfigSchema::closest_key(const std::string& key) const {
  std::string best;
  std::size_t best_distance = static_cast<std::size_t>(-1);
  for (const auto& k : keys_) {
    // A misplaced but correctly spelled leaf ("lr" for "training.lr") counts as close.
    std::size_t d = std::min(edit_distance(key, k.key), edit_distance(last_component(key), last_component(k.key)));
    // Within a section the user named, look there first.
    const auto dot = key.rfind('.');
    if (dot != std::string::npos && k.key.rfind(key.substr(0, dot + 1), 0) != 0) d += 1000;
    if (d < best_distance) best_distance = d, best = k.key;
  }
  return best;
}

std::string ConfigSchema::markdown() const {
  std::ostringstream out;
  out << "| key | type | default | description |\n|---|---|---|---|\n";
  for (const auto& k : keys_) {
    std::string doc = k.doc;
    const std::string range = range_text(k);
    if (!range.empty()) doc += " Range " + range + ".";
    if (!k.choices.empty()) doc += " One of: " + join(k.choices, ", ") + ".";
    std::string def = format_value(k.default_value);
    out << "| `" << k.key << "` | " << config_type_name(k.type) << " | `" << def << "` | " << doc << " |\n";
  }
  return out.str();
}

const ConfigValue& Config::value(const std::string& key, ConfigType type) const {
  const ConfigKey* k = schema_ ? schema_->find(key) : nullptr;
  if (!k) fail("internal: config key " + key + " is not declared");
  if (k->type != type)
    fail("internal: config key " + key + " is a " + config_type_name(k->type) + ", read as " + config_type_name(type));
  return values_.at(key);
}

int64_t Config::get_int(const std::string& key) const { return std::get<int64_t>(value(key, ConfigType::Int)); }
double Config::get_float(const std::string& key) const { return std::get<double>(value(key, ConfigType::Float)); }
bool Config::get_bool(const std::string& key) const { return std::get<bool>(value(key, ConfigType::Bool)); }
const std::string& Config::get_string(const std::string& key) const {
  return std::get<std::string>(value(key, ConfigType::String));
}
const std::vector<std::string>& Config::get_string_list(const std::string& key) const {
  return std::get<std::vector<std::string>>(value(key, ConfigType::StringList));
}
const std::vector<int64_t>& Config::get_int_list(const std::string& key) const {
  return std::get<std::vector<int64_t>>(value(key, ConfigType::IntList));
}
const std::string& Config::origin(const std::string& key) const { return origins_.at(key); }

std::vector<std::string> Config::differences(const Config& other) const {
  std::vector<std::string> out;
  for (const auto& [key, v] : values_) {
    auto it = other.values_.find(key);
    if (it == other.values_.end() || !(it->second == v)) out.push_back(key);
  }
  return out;
}

namespace {

// Emits the keys under `prefix` ("" or "a.b."), sections in order of first declaration, so a
// schema that interleaves sections still dumps each section once.
void emit_section(YAML::Emitter& out, const ConfigSchema& schema, const std::map<std::string, ConfigValue>& values,
                  const std::string& prefix) {
  std::vector<std::string> children;
  for (const auto& k : schema.keys()) {
    if (k.key.rfind(prefix, 0) != 0) continue;
    const std::string rest = k.key.substr(prefix.size());
    const std::string child = rest.substr(0, rest.find('.'));
    if (std::find(children.begin(), children.end(), child) == children.end()) children.push_back(child);
  }
  for (const auto& child : children) {
    out << YAML::Key << child << YAML::Value;
    const ConfigKey* k = schema.find(prefix + child);
    if (!k) {
      out << YAML::BeginMap;
      emit_section(out, schema, values, prefix + child + ".");
      out << YAML::EndMap;
      continue;
    }
    const ConfigValue& v = values.at(k->key);
    switch (k->type) {
      case ConfigType::Int: out << std::get<int64_t>(v); break;
      case ConfigType::Float: out << format_float(std::get<double>(v)); break;
      case ConfigType::Bool: out << std::get<bool>(v); break;
      case ConfigType::String: out << YAML::DoubleQuoted << std::get<std::string>(v); break;
      case ConfigType::StringList:
        out << YAML::Flow << YAML::BeginSeq;
        for (const auto& s : std::get<std::vector<std::string>>(v)) out << YAML::DoubleQuoted << s;
        out << YAML::EndSeq;
        break;
      case ConfigType::IntList:
        out << YAML::Flow << YAML::BeginSeq;
        for (auto x : std::get<std::vector<int64_t>>(v)) out << x;
        out << YAML::EndSeq;
        break;
    }
  }
}

}  // namespace

std::string Config::to_yaml() const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  emit_section(out, *schema_, values_, "");
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

namespace {

[[noreturn]] void unknown_key(const ConfigSchema& schema, const std::string& where, const std::string& key) {
  fail(where + ": unknown key " + key + " (did you mean " + schema.closest_key(key) + "?)");
}

bool is_section(const ConfigSchema& schema, const std::string& prefix) {
  for (const auto& k : schema.keys())
    if (k.key.rfind(prefix + ".", 0) == 0) return true;
  return false;
}

void read_map(const ConfigSchema& schema, const YAML::Node& map, const std::string& prefix,
              const std::string& source, std::map<std::string, ConfigValue>& values,
              std::map<std::string, std::string>& origins) {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    const std::string where = source + ":" + std::to_string(entry.first.Mark().line + 1);
    if (!entry.first.IsScalar()) fail(where + ": keys must be plain names");
    const std::string key = prefix.empty() ? entry.first.Scalar() : prefix + "." + entry.first.Scalar();
    if (!seen.insert(key).second) fail(where + ": " + key + " is set twice");
    if (const ConfigKey* k = schema.find(key)) {
      values[key] = ValueReader(*k, where).read(entry.second);
      origins[key] = where;
    } else if (is_section(schema, key)) {
      if (!entry.second.IsMap()) fail(where + ": " + key + " is a section; expected a mapping of its keys");
      read_map(schema, entry.second, key, source, values, origins);
    } else {
      unknown_key(schema, where, key);
    }
  }
}

}  // namespace

Config resolve_config(const ConfigSchema& schema, const std::string& yaml_text, const std::string& source,
                      const std::vector<std::string>& overrides) {
  Config config;
  config.schema_ = &schema;
  for (const auto& k : schema.keys()) {
    config.values_[k.key] = k.default_value;
    config.origins_[k.key] = "default";
  }
  if (!yaml_text.empty()) {
    YAML::Node root;
    try {
      root = YAML::Load(yaml_text);
    } catch (const YAML::Exception& e) {
      fail(source + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
    }
    if (!root.IsNull()) {
      if (!root.IsMap()) fail(source + ": expected a mapping of keys at the top level");
      read_map(schema, root, "", source, config.values_, config.origins_);
    }
  }
  for (const auto& item : overrides) {
    const std::string where = "command line";
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) fail(where + ": expected key.path=value, got \"" + item + "\"");
    const std::string key = item.substr(0, eq);
    const ConfigKey* k = schema.find(key);
    if (!k) unknown_key(schema, where, key);
    const std::string text = item.substr(eq + 1);
    YAML::Node node;
    try {
      // A bare string value stays a string even where YAML would read it otherwise.
      node = k->type == ConfigType::String ? YAML::Node(text) : YAML::Load(text);
    } catch (const YAML::Exception& e) {
      fail(where + ": " + key + ": invalid value \"" + text + "\": " + e.msg);
    }
    config.values_[key] = ValueReader(*k, where).read(node);
    config.origins_[key] = where;
  }
  return config;
}

Config load_config(const ConfigSchema& schema, const std::string& path, const std::vector<std::string>& overrides) {
  return resolve_config(schema, path.empty() ? "" : read_file(path), path, overrides);
}

}  // namespace lathe
