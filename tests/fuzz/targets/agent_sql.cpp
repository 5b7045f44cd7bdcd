// Fuzz target: a model's reply as the SQL agent handles it: the SQL of its last <answer>
// block, the lexical facts the guard reads, the SQLite executor (guard, authorizer, limits)
// on the tiny inventory database, and the templated answer and table made from the result.
// The raw reply goes through the SQL tokenizer too, since a reply without tags is SQL-like
// text a user may paste into `lathe agent sql`.
// Invariant: SQL the lexical guard refuses never runs (the executor answers Refused).
#include <cstdio>
#include <cstdlib>

#include "agent/answer.h"
#include "agent/sql_text.h"
#include "agent/sqlite_executor.h"
#include "data/format.h"
#include "tests/fuzz/fuzz_target.h"

namespace lathe::fuzz {

namespace {

agent::SqliteExecutor& fuzzed_executor() {
  static agent::SqliteExecutor executor = [] {
    agent::ExecutorLimits limits;
    limits.max_rows = 50;
    limits.timeout_seconds = 0.2;
    return agent::SqliteExecutor(tiny_inventory_db(), limits);
  }();
  return executor;
}

void sql_facts(const std::string& sql) {
  agent::sql_tokens(sql);
  agent::leading_keyword(sql);
  agent::called_functions(sql);
  agent::has_second_statement(sql);
}

}  // namespace

void fuzz_agent_sql(const std::string& input) {
  sql_facts(input);
  const std::string language = agent::question_language(input);
  const std::optional<std::string> sql = data::extract_answer_sql(input);
  if (!sql) return;
  sql_facts(*sql);
  const std::string refusal = agent::lexical_refusal(*sql, {});
  const agent::QueryOutcome outcome = fuzzed_executor().run(*sql);
  if (!refusal.empty() && outcome.status != agent::QueryStatus::Refused) {
    std::fprintf(stderr, "lathe fuzz: the guard refused the SQL (%s) but the executor answered %s\n", refusal.c_str(),
                 agent::query_status_name(outcome.status));
    std::abort();
  }
  if (outcome.ok()) {
    agent::template_answer(outcome.result, language, 5, fuzzed_executor().limits().max_rows);
    agent::format_result_table(outcome.result, 5);
  } else {
    agent::failure_answer(language, outcome.message);
  }
}

}  // namespace lathe::fuzz
