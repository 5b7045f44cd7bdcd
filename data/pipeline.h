// The dataset recipe: `lathe data build --config FILE --out DIR` runs db → collect → label →
// split → format (→ select) and writes DIR/inventory.sqlite, DIR/{train,val,test}.jsonl
// (labelled examples), DIR/sft_{train,val}.jsonl, DIR/grpo_{train,val}.jsonl and
// DIR/manifest.json. Imported questions without SQL are the unlabeled pool, DIR/pool.jsonl;
// with select.count > 0 the select stage ranks it into DIR/selection.jsonl.
// Also the strict YAML config of that recipe and `lathe data stats DIR`.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/collect.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "data/label.h"
#include "data/select.h"
#include "data/split.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

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
  int64_t select_count = 0;                 // select.count; 0 = no select stage
  SelectOptions select;                     // the other select.* keys (its count is select_count)
  std::string select_model, select_adapter;  // model folder (+ PEFT adapter) that scores the pool
  std::string select_device = "cpu", select_dtype = "f32";
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

// Counts per split, family and language, and length percentiles (p50/p90/p99/max) read from
// DIR/{train,val,test}.jsonl: characters of questions and SQL always; with a tokenizer and
// chat template also tokens of the question and of the whole SFT row as the trainer renders
// it (system_prompt + question + target answer), the number that data.max_seq_len must hold.
nlohmann::json dataset_stats(const std::string& dir, const Tokenizer* tokenizer = nullptr,
                             const ChatTemplate* chat = nullptr,
                             const std::string& system_prompt = dataset_system_prompt(""));
std::string format_dataset_stats(const nlohmann::json& stats);

}  // namespace lathe::data
