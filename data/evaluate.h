// Execution accuracy of an in-process model on labelled examples: the greedy answer's SQL
// (from <answer>) runs read-only and counts as correct when results_match(gold_result, its
// result) (sql_exec.h rules: column names ignored, rows a multiset unless the gold query
// orders them, numbers normalised). Answers without runnable SQL count as wrong. This is the
// metric of the active-learning experiment (docs/active_learning.md); `lathe agent eval`
// measures the same thing through an HTTP endpoint with the agent's retries.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/example.h"
#include "data/model_answers.h"
#include "data/sql_exec.h"

namespace lathe::data {

struct EvaluateOptions {
  int max_new_tokens = 256;
  int batch_size = 8;
  SqlLimits limits{1000, 2.0};
};

struct EvaluationReport {
  int64_t examples = 0;
  int64_t correct = 0;
  int64_t no_answer = 0;    // no <answer> SQL in the completion
  int64_t sql_errors = 0;   // SQL that failed to run
  nlohmann::json per_family = nlohmann::json::object();    // family -> {examples, correct, accuracy}
  nlohmann::json per_language = nlohmann::json::object();  // language -> {examples, correct, accuracy}
  std::vector<nlohmann::json> predictions;  // {id, family, language, sql, correct, error, completion}
  double accuracy() const { return examples ? static_cast<double>(correct) / examples : 0.0; }
  nlohmann::json summary() const;  // everything but the predictions
};

// Greedy answers from the model, then score_answers. Every example needs gold SQL and a
// gold_result (a labelled file); throws lathe::Error naming the first id without.
EvaluationReport evaluate_execution_accuracy(QuestionModel& qm, const SqlDatabase& db,
                                             const std::vector<Example>& examples, const EvaluateOptions& options);

// The scoring half: completions[i] answers examples[i].
EvaluationReport score_answers(const SqlDatabase& db, const std::vector<Example>& examples,
                               const std::vector<std::string>& completions, const SqlLimits& limits);

// Whether an executed answer returns the gold result (a truncated result never does).
bool answer_matches_gold(const ExecutedAnswer& answer, const CanonicalResult& gold);

}  // namespace lathe::data
