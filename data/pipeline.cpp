// Dataset recipe: config → db → collect → label → split → format (→ select) → manifest; and stats.
#include "data/pipeline.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
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
      {"select.count", "int", "0", "questions to pick from the unlabeled pool (0 = no select stage)",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.select_count = scalar_as<long long>(n, "select.count", "an integer", w);
         if (c.select_count < 0) fail(w + ": select.count must be at least 0");
       }},
      {"select.strategy", "string", "random", "random, entropy or disagreement",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         const std::string name = scalar_as<std::string>(n, "select.strategy", "a string", w);
         try {
           c.select.strategy = parse_select_strategy(name);
         } catch (const Error& e) {
           fail(w + ": select.strategy: " + e.what());
         }
       }},
      {"select.model", "string", "\"\"", "model folder that scores the pool (entropy, disagreement)",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.select_model = scalar_as<std::string>(n, "select.model", "a folder path", w);
       }},
      {"select.adapter", "string", "\"\"", "PEFT adapter folder applied to select.model",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.select_adapter = scalar_as<std::string>(n, "select.adapter", "a folder path", w);
       }},
      {"select.device", "string", "cpu", "cpu, cuda or cuda:N",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.select_device = scalar_as<std::string>(n, "select.device", "a device", w);
         try {
           parse_device(c.select_device);
         } catch (const Error& e) {
           fail(w + ": select.device: " + e.what());
         }
       }},
      {"select.dtype", "string", "f32", "f32, bf16 or f16",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.select_dtype = scalar_as<std::string>(n, "select.dtype", "a dtype", w);
         try {
           parse_dtype(c.select_dtype);
         } catch (const Error& e) {
           fail(w + ": select.dtype: " + e.what());
         }
       }},
      {"select.seed", "int", "1", "seed of random scores, tie-breaks and sampling",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.select.seed = static_cast<uint64_t>(scalar_as<long long>(n, "select.seed", "an integer", w));
       }},
      {"select.samples", "int", "8", "disagreement: answers sampled per question (K >= 2)",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.select.samples = static_cast<int>(positive_int(n, "select.samples", w));
         if (c.select.samples < 2) fail(w + ": select.samples must be at least 2");
       }},
      {"select.temperature", "float", "1.0", "disagreement: sampling temperature (> 0)",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.select.temperature = scalar_as<double>(n, "select.temperature", "a number", w);
         if (!(c.select.temperature > 0)) fail(w + ": select.temperature must be above 0");
       }},
      {"select.max_new_tokens", "int", "256", "tokens per answer at most",
       [](DataBuildConfig& c, const YAML::Node& n, const std::string& w) {
         c.select.max_new_tokens = static_cast<int>(positive_int(n, "select.max_new_tokens", w));
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
  if (!root.IsMap()) fail(source + ": expected a mapping of sections (db, collect, label, split, select)");
  std::set<std::string> sections;
  for (const auto& s : key_specs()) sections.insert(std::string(s.key).substr(0, std::string(s.key).find('.')));
  for (const auto& section : root) {
    const std::string name = section.first.Scalar();
    const std::string where = where_of(source, section.first);
    if (!sections.count(name)) {
      fail(where + ": unknown section '" + name + "' (valid: db, collect, label, split, select)");
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
  if (config.select_count > 0 && config.select.strategy != SelectStrategy::Random && config.select_model.empty()) {
    fail(source + ": select.strategy " + select_strategy_name(config.select.strategy) + " needs select.model");
  }
  if (!config.select_adapter.empty() && config.select_model.empty()) {
    fail(source + ": select.adapter needs select.model");
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
    std::vector<Example> pool;  // imported questions without SQL: nothing to label yet
    for (const auto& path : config.collect_imports) {
      ImportReport r = import_user_questions(path);
      import_errors += static_cast<int>(r.errors.size());
      imported += r.examples.size();
      for (auto& e : r.examples) (e.sql.find_first_not_of(" \t\r\n") == std::string::npos ? pool : examples).push_back(e);
    }
    manifest["collect"]["imported_examples"] = imported;
    manifest["collect"]["import_errors"] = import_errors;
    manifest["collect"]["unlabeled_pool"] = pool.size();
    // The select stage's inputs are checked now, before labelling and splitting take time.
    std::optional<LoadedModel> select_model;
    if (config.select_count > 0) {
      if (pool.empty()) {
        fail("select.count is " + std::to_string(config.select_count) +
             " but the unlabeled pool is empty (collect.import files have no rows without sql)");
      }
      if (!config.select_model.empty()) {
        select_model.emplace(load_model_with_adapter(config.select_model, config.select_adapter,
                                                     parse_device(config.select_device),
                                                     parse_dtype(config.select_dtype)));
      }
    }

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
    const std::string system_prompt = dataset_system_prompt("");
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

    // 6. select: rank the unlabeled pool for labelling next
    if (!pool.empty()) {
      write_examples_jsonl(tmp + "/pool.jsonl", pool);
      manifest["files"].push_back("pool.jsonl");
    }
    if (config.select_count > 0) {
      std::optional<QuestionModel> qm;
      if (select_model) qm.emplace(make_question_model(*select_model, system_prompt));
      SelectOptions options = config.select;
      options.count = config.select_count;
      const auto selected = select_examples(qm ? &*qm : nullptr, &db, pool, options);
      write_selection_jsonl(tmp + "/selection.jsonl", selected, config.select.strategy);
      manifest["select"] = {{"strategy", select_strategy_name(config.select.strategy)},
                            {"count", selected.size()},
                            {"pool", pool.size()},
                            {"model", config.select_model},
                            {"adapter", config.select_adapter}};
      manifest["files"].push_back("selection.jsonl");
    }
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

nlohmann::json dataset_stats(const std::string& dir, const Tokenizer* tokenizer, const ChatTemplate* chat,
                             const std::string& system_prompt) {
  if ((tokenizer == nullptr) != (chat == nullptr)) fail("dataset_stats: token lengths need a tokenizer and a chat template");
  nlohmann::json stats = {{"dir", dir}, {"splits", nlohmann::json::object()}};
  std::map<std::string, std::map<std::string, int>> family_counts;  // family -> split -> n
  for (const char* split : {"train", "val", "test"}) {
    const std::string path = dir + "/" + split + ".jsonl";
    if (!fs::exists(path)) fail(path + " does not exist (run `lathe data build` first)");
    const std::vector<Example> examples = read_examples_jsonl(path);
    std::map<std::string, int> languages;
    std::vector<size_t> question_chars, sql_chars, question_tokens, sft_tokens;
    for (const auto& e : examples) {
      ++languages[e.language];
      ++family_counts[e.family][split];
      question_chars.push_back(utf8_length(e.question));
      sql_chars.push_back(utf8_length(e.sql));
      if (tokenizer) {
        question_tokens.push_back(tokenizer->encode(e.question).size());
        const nlohmann::json row = sft_row(e, system_prompt);
        std::vector<ChatMessage> messages;
        for (const auto& m : row["messages"]) {
          messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
        }
        sft_tokens.push_back(encode_rendered_chat(*tokenizer, chat->render(messages, false)).size());
      }
    }
    stats["splits"][split] = {{"examples", examples.size()},
                              {"languages", languages},
                              {"question_chars", length_percentiles(question_chars)},
                              {"sql_chars", length_percentiles(sql_chars)}};
    if (tokenizer) {
      stats["splits"][split]["question_tokens"] = length_percentiles(question_tokens);
      stats["splits"][split]["sft_row_tokens"] = length_percentiles(sft_tokens);
    }
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
    for (const char* measure : {"question_chars", "sql_chars", "question_tokens", "sft_row_tokens"}) {
      if (!s.contains(measure) || s[measure].is_null()) continue;
      const auto& p = s[measure];
      out << "; " << measure << " p50/p90/p99/max " << p["p50"] << "/" << p["p90"] << "/" << p["p99"] << "/"
          << p["max"];
    }
    out << "\n";
  }
  out << "families (" << stats["families"].size() << "): train/val/test\n";
  for (const auto& item : stats["families"].items()) {
    const std::string& family = item.key();
    const nlohmann::json& counts = item.value();  // not a binding: the lambda captures it (C++17, clang)
    auto n = [&](const char* split) { return counts.contains(split) ? counts[split].get<int>() : 0; };
    out << "  " << family << ": " << n("train") << "/" << n("val") << "/" << n("test") << "\n";
  }
  return out.str();
}

}  // namespace lathe::data
