// Dataset recipe: config → db → collect → label → split → format → manifest; and stats.
#include "data/pipeline.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "data/format.h"
#include "data/text_io.h"

namespace lathe::data {

namespace fs = std::filesystem;

namespace {

struct KeySpec {
  const char* key;
  const char* type;
  const char* default_text;
  const char* doc;
  std::function<void(DataBuildConfig&, const YAML::Node&, const std::string& where)> set;
};

std::string where_of(const std::string& source, const YAML::Node& node) {
  return source + ":" + std::to_string(node.Mark().line + 1);
}

template <typename T>
T scalar_as(const YAML::Node& node, const std::string& key, const char* type, const std::string& where) {
  if (!node.IsScalar()) fail(where + ": " + key + " must be " + type);
  try {
    return node.as<T>();
  } catch (const YAML::BadConversion&) {
    fail(where + ": " + key + " must be " + type + " (got '" + node.Scalar() + "')");
  }
}

std::vector<std::string> string_list(const YAML::Node& node, const std::string& key, const std::string& where) {
  if (node.IsNull()) return {};
  if (!node.IsSequence()) fail(where + ": " + key + " must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : node) {
    if (!item.IsScalar()) fail(where_of(where.substr(0, where.rfind(':')), item) + ": " + key + " must be a list of strings");
    out.push_back(item.Scalar());
  }
  return out;
}

int64_t positive_int(const YAML::Node& n, const std::string& key, const std::string& where) {
  const auto v = scalar_as<long long>(n, key, "an integer", where);
  if (v < 1) fail(where + ": " + key + " must be at least 1 (got " + std::to_string(v) + ")");
  return v;
}

double fraction(const YAML::Node& n, const std::string& key, const std::string& where) {
  const double v = scalar_as<double>(n, key, "a number", where);
  if (!(v >= 0 && v < 1)) fail(where + ": " + key + " must be in [0, 1) (got " + n.Scalar() + ")");
  return v;
}

const std::vector<KeySpec>& key_specs() {
  static const std::vector<KeySpec> specs = {
      {"db.vehicles", "int", "2000", "vehicles to generate",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.db.vehicles = static_cast<int>(positive_int(n, "db.vehicles", w));
       }},
      {"db.seed", "int", "1", "generator seed (same seed, same rows)",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.db.seed = static_cast<uint64_t>(scalar_as<long long>(n, "db.seed", "an integer", w));
       }},
      {"db.as_of_date", "string", "2024-06-30", "meta.as_of_date, the 'today' of days-in-stock questions",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.db.as_of_date = scalar_as<std::string>(n, "db.as_of_date", "a YYYY-MM-DD date", w);
         c.as_of_date_given = true;
         if (!is_valid_date(c.db.as_of_date)) fail(w + ": db.as_of_date must be a YYYY-MM-DD date (got '" + c.db.as_of_date + "')");
       }},
      {"db.from_csv", "string", "\"\"", "import this inventory CSV instead of generating (as_of_date still applies when set)",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.db_from_csv = scalar_as<std::string>(n, "db.from_csv", "a file path", w);
       }},
      {"collect.per_family", "int", "30", "questions per template family (alternating zh/en)",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.collect.per_family = static_cast<int>(positive_int(n, "collect.per_family", w));
       }},
      {"collect.seed", "int", "1", "slot-filling seed",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.collect.seed = static_cast<uint64_t>(scalar_as<long long>(n, "collect.seed", "an integer", w));
       }},
      {"collect.import", "list", "[]", "user question files (.jsonl or .csv) added to the templates",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.collect_imports = string_list(n, "collect.import", w);
       }},
      {"label.max_result_rows", "int", "200", "drop examples whose gold result has more rows",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.label.max_result_rows = positive_int(n, "label.max_result_rows", w);
       }},
      {"label.timeout_seconds", "float", "2.0", "time limit per gold query",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.label.timeout_seconds = scalar_as<double>(n, "label.timeout_seconds", "a number", w);
         if (!(c.label.timeout_seconds > 0)) fail(w + ": label.timeout_seconds must be positive");
       }},
      {"split.seed", "int", "1", "split seed",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.split.seed = static_cast<uint64_t>(scalar_as<long long>(n, "split.seed", "an integer", w));
       }},
      {"split.val_fraction", "float", "0.1", "share of each family's question groups in val",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.split.val_fraction = fraction(n, "split.val_fraction", w);
       }},
      {"split.test_fraction", "float", "0.1", "share of each family's question groups in test",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.split.test_fraction = fraction(n, "split.test_fraction", w);
       }},
      {"split.holdout_families", "list", "[]", "families placed wholly in test (generalisation check)",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.split.holdout_families = string_list(n, "split.holdout_families", w);
         c.holdout_where = w;
       }},
  };
  return specs;
}

std::string valid_keys_under(const std::string& section) {
  std::string out;
  for (const auto& s : key_specs()) {
    const std::string key = s.key;
    if (section.empty() || key.rfind(section + ".", 0) == 0) out += (out.empty() ? "" : ", ") + key;
  }
  return out;
}

}  // namespace

std::string data_build_config_reference() {
  std::string out;
  for (const auto& s : key_specs()) {
    out += std::string(s.key) + " (" + s.type + ", default " + s.default_text + "): " + s.doc + "\n";
  }
  return out;
}

DataBuildConfig parse_data_build_config(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    fail(source + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  DataBuildConfig config;
  if (root.IsNull()) return config;
  if (!root.IsMap()) fail(source + ": expected a mapping of sections (db, collect, label, split)");
  std::set<std::string> sections;
  for (const auto& s : key_specs()) sections.insert(std::string(s.key).substr(0, std::string(s.key).find('.')));
  for (const auto& section : root) {
    const std::string name = section.first.Scalar();
    const std::string where = where_of(source, section.first);
    if (!sections.count(name)) {
      fail(where + ": unknown section '" + name + "' (valid: db, collect, label, split)");
    }
    if (section.second.IsNull()) continue;
    if (!section.second.IsMap()) fail(where + ": section '" + name + "' must be a mapping");
    for (const auto& entry : section.second) {
      const std::string key = name + "." + entry.first.Scalar();
      const std::string key_where = where_of(source, entry.first);
      auto spec = std::find_if(key_specs().begin(), key_specs().end(),
                               [&](const KeySpec& s) { return key == s.key; });
      if (spec == key_specs().end()) {
        fail(key_where + ": unknown key '" + key + "' (valid: " + valid_keys_under(name) + ")");
      }
      spec->set(config, entry.second, where_of(source, entry.second));
    }
  }
  if (config.split.val_fraction + config.split.test_fraction >= 1) {
    fail(source + ": split.val_fraction + split.test_fraction must be below 1");
  }
  return config;
}

DataBuildConfig load_data_build_config(const std::string& path) {
  return parse_data_build_config(read_file(path), path);
}

nlohmann::json build_dataset(const DataBuildConfig& config, const std::string& out_dir) {
  const std::string tmp = out_dir + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) fail("cannot create " + tmp + ": " + ec.message());
  try {
    nlohmann::json manifest;
    // 1. database
    const std::string db_path = tmp + "/inventory.sqlite";
    if (!config.db_from_csv.empty()) {
      const CsvImportReport r = import_inventory_csv(config.db_from_csv, db_path, config.as_of_date_given ? config.db.as_of_date : "");
      manifest["db"] = {{"source", config.db_from_csv}, {"imported", r.imported}, {"rejected", r.rejected}};
    } else {
      generate_inventory_db(db_path, config.db);
      manifest["db"] = {{"vehicles", config.db.vehicles}, {"seed", config.db.seed}, {"as_of_date", config.db.as_of_date}};
    }
    const SqlDatabase db(db_path);

    // 2. collect
    std::vector<Example> examples = collect_template_questions(db, config.collect);
    manifest["collect"] = {{"template_examples", examples.size()},
                           {"families", template_families().size()},
                           {"per_family", config.collect.per_family}};
    int import_errors = 0;
    size_t imported = 0;
    for (const auto& path : config.collect_imports) {
      ImportReport r = import_user_questions(path);
      import_errors += static_cast<int>(r.errors.size());
      imported += r.examples.size();
      examples.insert(examples.end(), r.examples.begin(), r.examples.end());
    }
    manifest["collect"]["imported_examples"] = imported;
    manifest["collect"]["import_errors"] = import_errors;

    // 3. label
    const LabelReport labelled = label_examples(db, examples, config.label);
    manifest["label"] = {{"kept", labelled.kept.size()}, {"dropped", labelled.dropped}};

    // 4. split
    std::set<std::string> families;
    for (const auto& e : labelled.kept) families.insert(e.family);
    for (const auto& f : config.split.holdout_families) {
      if (!families.count(f)) {
        std::string valid;
        for (const auto& g : families) valid += (valid.empty() ? "" : ", ") + g;
        fail((config.holdout_where.empty() ? std::string("split") : config.holdout_where) +
             ": split.holdout_families: unknown family '" + f + "' (valid: " + valid + ")");
      }
    }
    const DatasetSplits splits = split_examples(labelled.kept, config.split);

    // 5. format
    write_examples_jsonl(tmp + "/train.jsonl", splits.train);
    write_examples_jsonl(tmp + "/val.jsonl", splits.val);
    write_examples_jsonl(tmp + "/test.jsonl", splits.test);
    const std::string system_prompt = inventory_system_prompt(inventory_schema_sql());
    write_sft_jsonl(tmp + "/sft_train.jsonl", splits.train, system_prompt);
    write_sft_jsonl(tmp + "/sft_val.jsonl", splits.val, system_prompt);
    write_grpo_jsonl(tmp + "/grpo_train.jsonl", splits.train, system_prompt);
    write_grpo_jsonl(tmp + "/grpo_val.jsonl", splits.val, system_prompt);

    manifest["split"] = {{"seed", config.split.seed},
                         {"val_fraction", config.split.val_fraction},
                         {"test_fraction", config.split.test_fraction},
                         {"holdout_families", config.split.holdout_families},
                         {"train", splits.train.size()},
                         {"val", splits.val.size()},
                         {"test", splits.test.size()}};
    manifest["files"] = {"inventory.sqlite", "train.jsonl", "val.jsonl", "test.jsonl", "sft_train.jsonl",
                         "sft_val.jsonl", "grpo_train.jsonl", "grpo_val.jsonl"};
    write_file_atomic(tmp + "/manifest.json", manifest.dump(2) + "\n");
    replace_directory_atomic(tmp, out_dir);
    log::info("wrote dataset to " + out_dir);
    return manifest;
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

namespace {

nlohmann::json length_percentiles(std::vector<size_t> lengths) {
  if (lengths.empty()) return nullptr;
  std::sort(lengths.begin(), lengths.end());
  auto pct = [&](double p) {  // nearest rank
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * lengths.size()));
    return lengths[std::max<size_t>(rank, 1) - 1];
  };
  return {{"p50", pct(50)}, {"p90", pct(90)}, {"p99", pct(99)}, {"max", lengths.back()}};
}

}  // namespace

nlohmann::json dataset_stats(const std::string& dir) {
  nlohmann::json stats = {{"dir", dir}, {"splits", nlohmann::json::object()}};
  std::map<std::string, std::map<std::string, int>> family_counts;  // family -> split -> n
  for (const char* split : {"train", "val", "test"}) {
    const std::string path = dir + "/" + split + ".jsonl";
    if (!fs::exists(path)) fail(path + " does not exist (run `lathe data build` first)");
    const std::vector<Example> examples = read_examples_jsonl(path);
    std::map<std::string, int> languages;
    std::vector<size_t> question_chars, sql_chars;
    for (const auto& e : examples) {
      ++languages[e.language];
      ++family_counts[e.family][split];
      question_chars.push_back(utf8_length(e.question));
      sql_chars.push_back(utf8_length(e.sql));
    }
    stats["splits"][split] = {{"examples", examples.size()},
                              {"languages", languages},
                              {"question_chars", length_percentiles(question_chars)},
                              {"sql_chars", length_percentiles(sql_chars)}};
  }
  stats["families"] = family_counts;
  return stats;
}

std::string format_dataset_stats(const nlohmann::json& stats) {
  std::ostringstream out;
  out << "dataset " << stats["dir"].get<std::string>() << "\n";
  for (const char* split : {"train", "val", "test"}) {
    const auto& s = stats["splits"][split];
    out << "  " << split << ": " << s["examples"].get<size_t>() << " examples";
    for (const auto& [lang, n] : s["languages"].items()) out << ", " << lang << " " << n.get<int>();
    if (!s["question_chars"].is_null()) {
      out << "; question chars p50/p90/p99/max " << s["question_chars"]["p50"] << "/" << s["question_chars"]["p90"]
          << "/" << s["question_chars"]["p99"] << "/" << s["question_chars"]["max"] << ", sql chars "
          << s["sql_chars"]["p50"] << "/" << s["sql_chars"]["p90"] << "/" << s["sql_chars"]["p99"] << "/"
          << s["sql_chars"]["max"];
    }
    out << "\n";
  }
  out << "families (" << stats["families"].size() << "): train/val/test\n";
  for (const auto& [family, counts] : stats["families"].items()) {
    auto n = [&](const char* split) { return counts.contains(split) ? counts[split].get<int>() : 0; };
    out << "  " << family << ": " << n("train") << "/" << n("val") << "/" << n("test") << "\n";
  }
  return out.str();
}

}  // namespace lathe::data
