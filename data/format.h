// Format: the ONE definition of the inventory system prompt and the answer format
// ("<reasoning>\n…\n</reasoning>\n<answer>\nSQL\n</answer>\n"), shared by the SFT/GRPO
// datasets, the agent runtime and the rewards; plus the dataset rows built from them.
//
// Rows carry chat messages, not rendered text: the trainers render them with the model's own
// chat template (model/chat_template.h), so one dataset serves every model family.
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/example.h"

namespace lathe::data {

// The shape every text-to-SQL system prompt shares: "You are a SQL assistant for {subject}.",
// the schema DDL, the value conventions, and the answer format. The inventory prompt is one
// instance; the pretraining corpus (data/sql_corpus.h) writes others, so a base model meets
// the same frame before SFT shows it the inventory schema.
std::string sql_system_prompt(const std::string& subject, const std::string& schema_text,
                              const std::string& conventions, const std::string& dialect = "SQLite");

// The inventory system prompt: sql_system_prompt with the schema DDL (schema_text, e.g.
// inventory_schema_sql() or SqlDatabase::schema_text()) and the inventory's conventions.
std::string inventory_system_prompt(const std::string& schema_text);
// The same prompt asking for a query in `dialect` ("SQLite" gives the prompt above exactly;
// the agent passes "PostgreSQL" for its PostgreSQL backend).
std::string inventory_system_prompt(const std::string& schema_text, const std::string& dialect);

// A few stored values of one text column, as the agent shows them to the model.
struct ColumnSamples {
  std::string table, column;
  std::vector<std::string> values;
};

// The live schema for the prompt: schema_text, then one comment line per sampled column,
// "-- vehicles.brand: '宝马', '丰田', '大众'" (values quoted as SQL literals, long ones cut),
// so the model sees how values are spelled in this database.
std::string schema_with_samples(const std::string& schema_text, const std::vector<ColumnSamples>& samples);

// The system prompt a dataset is formatted with: the shared inventory prompt when
// override_path is empty, else that file's text (one final newline dropped). The same prompt
// must reach selection and evaluation, or the model sees a prompt it was not trained on.
// Throws lathe::Error naming the file when it is unreadable or blank.
std::string dataset_system_prompt(const std::string& override_path);

// "<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{sql}\n</answer>\n" — the trailing
// newline makes it match the strict XML format reward exactly (see docs INTEROP.md).
std::string format_answer(const std::string& reasoning, const std::string& sql);

// The SQL inside the last complete <answer>…</answer> block, trimmed, with a ```sql fence and
// trailing semicolons removed; nullopt when there is no complete block or it is empty.
std::optional<std::string> extract_answer_sql(const std::string& completion);

// The names describe_sql_plan recognises in a query, and how it words "days since <date>".
struct SqlPlanNames {
  std::set<std::string> tables, columns;
  std::string age_zh, age_en;  // the clause for a julianday() difference against meta.as_of_date
};
// The inventory's tables and columns (days in stock = meta.as_of_date - pickup_date).
const SqlPlanNames& inventory_plan_names();

// One short templated sentence in `language` ("zh" | "en") naming the tables, filters,
// aggregates, grouping and ordering the SQL uses: the reasoning of SFT targets.
std::string describe_sql_plan(const std::string& sql, const std::string& language);  // inventory names
std::string describe_sql_plan(const std::string& sql, const std::string& language, const SqlPlanNames& names);

// {"messages": [system, user, assistant]}
nlohmann::json sft_row(const Example& example, const std::string& system_prompt);
// {"id", "prompt": [system, user], "gold_sql", "gold_result", "family", "language"}
nlohmann::json grpo_row(const Example& example, const std::string& system_prompt);

void write_sft_jsonl(const std::string& path, const std::vector<Example>& examples,
                     const std::string& system_prompt);
void write_grpo_jsonl(const std::string& path, const std::vector<Example>& examples,
                      const std::string& system_prompt);

}  // namespace lathe::data
