// The pretraining corpus: general text-to-SQL over several synthetic schemas that are NOT the
// inventory (an electronics shop, a university, a library, a hospital, an airline, a hotel
// group), in Chinese and English, so a base model made from nothing learns SQL and the
// shared prompt/answer frame (data/format.h) before SFT shows it the inventory schema.
//
// Every schema has the same outline as many business databases: a table of sites (id, name,
// city, region) and a main table of entities joined to it (a text id, two categorical columns
// stored in Chinese, a status code, a measure, a count, a date), plus meta(key, value) holding
// as_of_date. Question families are written once against that outline and filled with each
// schema's own nouns and real values; each schema's database is generated deterministically
// from the seed and every gold query is executed on it (data/label.h): queries that return
// nothing are dropped and counted.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/example.h"
#include "data/format.h"

namespace lathe::data {

// shop school library hospital airline hotel
const std::vector<std::string>& corpus_schema_names();

struct CorpusOptions {
  int64_t examples = 3000;           // rows kept in total, split evenly over the schemas
  uint64_t seed = 1;
  std::vector<std::string> schemas;  // empty = every schema
  int entities_per_schema = 400;     // rows of each main table
  std::string as_of_date = "2024-06-30";
};

struct CorpusSchemaInfo {
  std::string name;
  std::string schema_sql;     // CREATE statements with column comments
  std::string system_prompt;  // sql_system_prompt(subject, schema_sql, conventions)
  SqlPlanNames plan_names;    // for the reasoning sentence of each answer
  std::string database;       // path of its SQLite file
};

struct CorpusExample {
  std::string schema;
  Example example;  // family is "<schema>.<family>", gold_result filled
};

struct SqlCorpus {
  std::vector<CorpusSchemaInfo> schemas;
  std::vector<CorpusExample> examples;
  std::map<std::string, int> dropped;  // label's reasons, summed over schemas
};

// Writes one SQLite file per schema into db_dir (created if needed) and the examples that
// executed on it. Same options, same databases and rows. Throws lathe::Error on an unknown
// schema name (listing the valid ones).
SqlCorpus generate_sql_corpus(const CorpusOptions& options, const std::string& db_dir);

// {"messages": [system, user, assistant], "schema", "family", "language", "id"}: the chat form
// SFT and pretraining read (answer = format_answer(describe_sql_plan(...), sql)).
nlohmann::json corpus_chat_row(const CorpusSchemaInfo& schema, const Example& example);

// The corpus as chat JSONL (one row per example), then `extra` rows (e.g. glossary_rows()).
void write_corpus_jsonl(const std::string& path, const SqlCorpus& corpus,
                        const std::vector<nlohmann::json>& extra = {});

// General vocabulary for a base model made from nothing: every Chinese/English pair of the
// car market's words (brands, models, colours, cities, regions) as two short chat rows, one
// per direction ({"messages": [user, assistant]}, "family": "glossary"). A pretrained base
// brings these words from its web text; a tiny base pretrained only on the other schemas would
// meet them first in LoRA SFT, which cannot train their embeddings.
std::vector<nlohmann::json> glossary_rows();

}  // namespace lathe::data
