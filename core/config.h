// Strict YAML configs for every recipe: each key is declared once (type, default, one-line
// doc, optional range or choices) in a ConfigSchema; a YAML file plus `key.path=value`
// command-line overrides are checked against it before any work starts. Unknown keys (with
// the closest valid key suggested), wrong types, out-of-range values and invalid choices are
// lathe::Errors naming the key and FILE:LINE. The resolved config dumps back to YAML (the run
// folder's config.yaml) and the schema renders itself as a markdown table (docs/config.md).
// Departure from torchtune/OmegaConf: no interpolation, no instantiation of classes from
// `_component_` strings; keys are a flat declared list shown nested in YAML.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace lathe {

enum class ConfigType { Int, Float, Bool, String, StringList, IntList };
std::string config_type_name(ConfigType type);  // "int", "float", "bool", "string", "string list", "int list"

using ConfigValue = std::variant<int64_t, double, bool, std::string, std::vector<std::string>, std::vector<int64_t>>;

struct ConfigKey {
  std::string key;   // dotted path: "training.lr"
  ConfigType type = ConfigType::String;
  ConfigValue default_value;
  std::string doc;
  std::optional<double> min, max;       // inclusive, Int and Float (and each IntList element)
  std::vector<std::string> choices;     // String (and each StringList element); empty = any
};

class ConfigSchema {
 public:
  ConfigSchema& add_int(const std::string& key, int64_t default_value, const std::string& doc,
                        std::optional<double> min = std::nullopt, std::optional<double> max = std::nullopt);
  ConfigSchema& add_float(const std::string& key, double default_value, const std::string& doc,
                          std::optional<double> min = std::nullopt, std::optional<double> max = std::nullopt);
  ConfigSchema& add_bool(const std::string& key, bool default_value, const std::string& doc);
  ConfigSchema& add_string(const std::string& key, const std::string& default_value, const std::string& doc,
                           const std::vector<std::string>& choices = {});
  ConfigSchema& add_string_list(const std::string& key, const std::vector<std::string>& default_value,
                                const std::string& doc, const std::vector<std::string>& choices = {});
  ConfigSchema& add_int_list(const std::string& key, const std::vector<int64_t>& default_value,
                             const std::string& doc, std::optional<double> min = std::nullopt,
                             std::optional<double> max = std::nullopt);

  const std::vector<ConfigKey>& keys() const { return keys_; }
  const ConfigKey* find(const std::string& key) const;
  // The declared key nearest to `key` by edit distance (whole path or last component).
  std::string closest_key(const std::string& key) const;
  // Markdown table: key | type | default | description (range and choices appended).
  std::string markdown() const;

 private:
  ConfigSchema& add(ConfigKey key);
  std::vector<ConfigKey> keys_;
};

class Config {
 public:
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  const std::vector<std::string>& get_string_list(const std::string& key) const;
  const std::vector<int64_t>& get_int_list(const std::string& key) const;
  // Where the value came from: "default", "FILE:LINE" or "command line".
  const std::string& origin(const std::string& key) const;
  // Keys whose values differ from `other` (same schema).
  std::vector<std::string> differences(const Config& other) const;
  // Every key, nested by its dotted path, in declaration order.
  std::string to_yaml() const;

  const ConfigSchema& schema() const { return *schema_; }

 private:
  friend Config resolve_config(const ConfigSchema&, const std::string&, const std::string&,
                               const std::vector<std::string>&);
  const ConfigValue& value(const std::string& key, ConfigType type) const;
  const ConfigSchema* schema_ = nullptr;
  std::map<std::string, ConfigValue> values_;
  std::map<std::string, std::string> origins_;
};

// Defaults, then YAML text (named `source` in errors; empty text = no file), then overrides
// "a.b=value" (value in YAML syntax: 3, 1e-4, true, [q_proj, v_proj]). The schema must
// outlive the returned Config.
Config resolve_config(const ConfigSchema& schema, const std::string& yaml_text, const std::string& source,
                      const std::vector<std::string>& overrides);
// Reads PATH (empty = defaults only) and resolves it.
Config load_config(const ConfigSchema& schema, const std::string& path, const std::vector<std::string>& overrides);

}  // namespace lathe
