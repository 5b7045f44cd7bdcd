// Execution accuracy in-process: see evaluate.h.
#include "pipeline/evaluate.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "data/format.h"
#include "model/generate.h"

namespace lathe::pipeline {

using nlohmann::json;

namespace {

json tally_json(const Tally& t) {
  return {{"examples", t.examples}, {"correct", t.correct}, {"accuracy", t.accuracy()}};
}

}  // namespace

AnswerScore score_answer(const data::SqlDatabase& db, const data::Example& example, const std::string& completion,
                         const data::SqlLimits& limits) {
  AnswerScore score;
  score.sql = data::extract_answer_sql(completion);
  if (!score.sql) {
    score.error = "no_answer";
    return score;
  }
  try {
    const data::CanonicalResult gold = data::canonical_from_json(example.gold_result);
    const data::SqlResult result = db.query(*score.sql, limits);
    // A result cut at the row cap is not the gold answer, whatever its first rows say.
    if (result.truncated) score.error = "truncated";
    else score.correct = data::results_match(gold, data::canonicalize(result, gold.ordered));
    if (!score.correct && score.error.empty()) score.error = "wrong_result";
  } catch (const data::SqlError& e) {
    score.sql_error = true;
    score.error = e.what();
  }
  return score;
}

json EvalReport::summary() const {
  json per_family_json = json::object(), per_language_json = json::object();
  for (const auto& [k, t] : per_family) per_family_json[k] = tally_json(t);
  for (const auto& [k, t] : per_language) per_language_json[k] = tally_json(t);
  return {{"overall", tally_json(overall)},
          {"seen_families", tally_json(seen_families)},
          {"unseen_families", tally_json(unseen_families)},
          {"no_answer", no_answer},
          {"sql_errors", sql_errors},
          {"per_family", per_family_json},
          {"per_language", per_language_json},
          {"seconds", seconds}};
}

EvalReport evaluate_execution_accuracy(CausalLM& model, const Tokenizer& tokenizer, const ChatTemplate& chat,
                                       const std::string& system_prompt, const data::SqlDatabase& db,
                                       const std::vector<data::Example>& examples, const EvalOptions& options) {
  for (const auto& e : examples)
    if (e.sql.empty() || e.gold_result.is_null())
      fail("eval: example '" + e.id + "' has no gold SQL and result (use a labelled split such as test.jsonl)");
  const auto start = std::chrono::steady_clock::now();
  EvalReport report;
  torch::NoGradGuard no_grad;
  model->eval();

  SamplingParams sampling;
  sampling.max_new_tokens = options.max_new_tokens;
  sampling.temperature = 0;
  // Nothing after the answer block is read, so decoding stops there (kept in the text).
  sampling.stop = {"</answer>"};
  sampling.include_stop_str_in_output = true;

  const size_t batch = static_cast<size_t>(std::max(1, options.batch_size));
  for (size_t begin = 0; begin < examples.size(); begin += batch) {
    const size_t end = std::min(examples.size(), begin + batch);
    std::vector<GenerationRequest> requests;
    for (size_t i = begin; i < end; ++i) {
      const std::string prompt = chat.render({{"system", system_prompt}, {"user", examples[i].question}}, true);
      requests.push_back({encode_rendered_chat(tokenizer, prompt), sampling});
    }
    const GenerationResult generated = generate(model, &tokenizer, requests);
    for (size_t i = begin; i < end; ++i) {
      const data::Example& e = examples[i];
      const std::string& completion = generated.completions[i - begin][0].text;
      const AnswerScore score = score_answer(db, e, completion, options.limits);
      report.no_answer += score.error == "no_answer" ? 1 : 0;
      report.sql_errors += score.sql_error ? 1 : 0;
      const bool correct = score.correct;
      const bool unseen = std::find(options.unseen_families.begin(), options.unseen_families.end(), e.family) !=
                          options.unseen_families.end();
      for (Tally* t : {&report.overall, unseen ? &report.unseen_families : &report.seen_families,
                       &report.per_family[e.family], &report.per_language[e.language]}) {
        ++t->examples;
        t->correct += correct ? 1 : 0;
      }
      report.predictions.push_back({{"id", e.id},
                                    {"family", e.family},
                                    {"language", e.language},
                                    {"question", e.question},
                                    {"gold_sql", e.sql},
                                    {"completion", completion},
                                    {"sql", score.sql ? json(*score.sql) : json(nullptr)},
                                    {"correct", correct},
                                    {"error", score.error}});
    }
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace lathe::pipeline
