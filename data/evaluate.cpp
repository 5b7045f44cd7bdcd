// Execution accuracy: greedy answers, executed, compared with the gold result sets.
#include "data/evaluate.h"

#include "core/error.h"
#include "core/log.h"

namespace lathe::data {

namespace {

void count(nlohmann::json& table, const std::string& key, bool correct) {
  auto& entry = table[key];
  if (entry.is_null()) entry = {{"examples", 0}, {"correct", 0}};
  entry["examples"] = entry["examples"].get<int64_t>() + 1;
  entry["correct"] = entry["correct"].get<int64_t>() + (correct ? 1 : 0);
  entry["accuracy"] = entry["correct"].get<double>() / entry["examples"].get<double>();
}

}  // namespace

nlohmann::json EvaluationReport::summary() const {
  return {{"examples", examples},        {"correct", correct},         {"accuracy", accuracy()},
          {"no_answer", no_answer},      {"sql_errors", sql_errors},   {"per_family", per_family},
          {"per_language", per_language}};
}

bool answer_matches_gold(const ExecutedAnswer& answer, const CanonicalResult& gold) {
  if (!answer.result || answer.result->truncated) return false;
  return results_match(gold, canonicalize(*answer.result, gold.ordered));
}

namespace {

void require_labels(const std::vector<Example>& examples) {
  for (const auto& e : examples) {
    if (e.sql.empty() || !e.gold_result.is_object()) {
      fail("evaluate: example '" + e.id + "' has no gold SQL and gold_result (use a labelled file)");
    }
  }
}

}  // namespace

EvaluationReport score_answers(const SqlDatabase& db, const std::vector<Example>& examples,
                               const std::vector<std::string>& completions, const SqlLimits& limits) {
  require_labels(examples);
  if (completions.size() != examples.size()) fail("evaluate: one completion per example expected");
  EvaluationReport report;
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& e = examples[i];
    const ExecutedAnswer answer = execute_answer(db, completions[i], limits);
    const bool correct = answer_matches_gold(answer, canonical_from_json(e.gold_result));
    if (!answer.sql) ++report.no_answer;
    else if (!answer.result) ++report.sql_errors;
    ++report.examples;
    report.correct += correct;
    count(report.per_family, e.family, correct);
    count(report.per_language, e.language, correct);
    report.predictions.push_back({{"id", e.id},
                                  {"family", e.family},
                                  {"language", e.language},
                                  {"sql", answer.sql ? nlohmann::json(*answer.sql) : nlohmann::json()},
                                  {"correct", correct},
                                  {"error", answer.error},
                                  {"completion", completions[i]}});
  }
  log::info("execution accuracy " + std::to_string(report.correct) + "/" + std::to_string(report.examples));
  return report;
}

EvaluationReport evaluate_execution_accuracy(QuestionModel& qm, const SqlDatabase& db,
                                             const std::vector<Example>& examples, const EvaluateOptions& options) {
  require_labels(examples);
  AnswerOptions a;
  a.batch_size = options.batch_size;
  a.sampling.temperature = 0;
  a.sampling.max_new_tokens = options.max_new_tokens;
  const auto completions = answer_questions(qm, examples, a);
  std::vector<std::string> texts;
  for (const auto& samples : completions) texts.push_back(samples[0].text);
  return score_answers(db, examples, texts, options.limits);
}

}  // namespace lathe::data
