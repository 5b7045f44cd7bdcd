// The dataset recipe: `lathe data build --config FILE --out DIR` runs db → collect → label →
// split → format and writes DIR/inventory.sqlite, DIR/{train,val,test}.jsonl (labelled
// examples), DIR/sft_{train,val}.jsonl, DIR/grpo_{train,val}.jsonl and DIR/manifest.json.
// Also the strict YAML config of that recipe and `lathe data stats DIR`.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/collect.h"
#include "data/inventory_db.h"
#include "data/label.h"
#include "data/split.h"

namespace lathe::data {

struct DataBuildConfig {
  InventoryDbOptions db;
  std::string db_from_csv;                  // db.from_csv: import instead of generating
  bool as_of_date_given = false;            // an import defaults to its latest pickup date
  CollectOptions collect;
  std::vector<std::string> collect_imports;  // collect.import: user question files
  LabelOptions label;
  SplitOptions split;
  std::string holdout_where;                // "FILE:LINE" of split.holdout_families, for errors
};

// Every config key with its type, default and meaning, one per line (for docs and --help).
std::string data_build_config_reference();

// Strict: an unknown key or a value of the wrong type is a lathe::Error naming the key and
// "FILE:LINE". `source` names the text in messages.
DataBuildConfig parse_data_build_config(const std::string& yaml_text, const std::string& source);
DataBuildConfig load_data_build_config(const std::string& path);

// Runs every stage into a temporary folder and moves it over out_dir when all succeeded
// (an existing out_dir is replaced). Returns the manifest.
nlohmann::json build_dataset(const DataBuildConfig& config, const std::string& out_dir);

// Counts per split, family and language, and character-length percentiles (p50/p90/p99/max)
// of questions and SQL, read from DIR/{train,val,test}.jsonl.
nlohmann::json dataset_stats(const std::string& dir);
std::string format_dataset_stats(const nlohmann::json& stats);

}  // namespace lathe::data
