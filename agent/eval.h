// `lathe agent eval`: execution accuracy of the whole agent (retries included) on a question
// file, per template family and per language, with retries used, guard refusals, SQL errors,
// stopped queries, replies without SQL, latency and tokens; several models side by side
// (base vs SFT adapter vs GRPO adapter behind one endpoint).
//
// A question counts as correct when the SQL the agent ended with returns the gold result
// under data/sql_exec.h's comparison rules (column names ignored, order only when the gold
// query orders, numbers normalised); a truncated result never counts. The gold result is the
// row's gold_result when it has one (a `lathe data build` split), else the gold SQL's result
// through the same executor.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent.h"

namespace lathe::agent {

struct EvalQuestion {
  std::string id, family, language, question, gold_sql;
  std::optional<data::CanonicalResult> gold;  // filled by read or by prepare_gold
  std::string where;                          // "FILE:LINE"
};

// JSONL rows: "question" and "sql" (or "gold_sql") required; "id", "family" (default
// "user"), "language" (default: zh when the question has CJK) and "gold_result" optional.
// Throws lathe::Error naming FILE:LINE and the field.
std::vector<EvalQuestion> read_eval_questions(const std::string& path);

// Runs each gold SQL that has no gold result yet; throws naming FILE:LINE when one fails or
// reaches the row cap.
void prepare_gold(std::vector<EvalQuestion>& questions, SqlExecutor& executor);

struct EvalItem {
  std::string id, family, language;
  bool correct = false;
  bool answered = false;  // some attempt's SQL ran
  int attempts = 0;
  int refusals = 0, sql_errors = 0, stopped = 0, no_sql = 0;  // attempts that ended so
  std::string sql, problem;  // final SQL; last problem when not answered
  double latency_ms = 0;
  TokenUsage usage;
};

struct Tally {
  int n = 0, correct = 0;
  double accuracy() const { return n ? static_cast<double>(correct) / n : 0.0; }
};

struct ModelEval {
  std::string model;
  Tally overall;
  std::map<std::string, Tally> per_family, per_language;
  int questions_retried = 0;  // needed more than one attempt
  int retries_used = 0;       // attempts beyond the first, summed
  int guard_refusals = 0, sql_errors = 0, stopped = 0, no_sql = 0, unanswered = 0;
  double latency_mean_ms = 0, latency_p50_ms = 0, latency_p90_ms = 0, latency_max_ms = 0;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  std::vector<EvalItem> items;
};

// Scores one finished agent run against its question's gold result.
EvalItem score_answer(const EvalQuestion& question, const AgentAnswer& answer);
// Sums items into the model's figures (latency percentiles by nearest rank).
ModelEval summarize(const std::string& model, std::vector<EvalItem> items);

// Asks every question with `agent` (answers by template: phrasing is not scored).
ModelEval evaluate_model(Agent& agent, const std::string& model, const std::vector<EvalQuestion>& questions);

// {"models": [{"model", "n", "correct", "execution_accuracy", "per_family": {name: {"n",
//  "correct", "accuracy"}}, "per_language": {…}, "questions_retried", "retries_used",
//  "guard_refusals", "sql_errors", "stopped", "no_sql", "unanswered", "latency_ms": {"mean",
//  "p50", "p90", "max"}, "tokens": {"prompt", "completion"}, "items": [...]}]}
nlohmann::json eval_to_json(const std::vector<ModelEval>& models);
// One column per model; rows: accuracy overall, per family, per language, then the counts.
std::string eval_markdown(const std::vector<ModelEval>& models);

}  // namespace lathe::agent
