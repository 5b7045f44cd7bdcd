// The pipeline's eval stage: execution accuracy of a model (base, or base + an adapter) on
// labelled held-out questions, generated in-process. Definitions are the ones `lathe agent
// eval` and the sql_execution reward use: the prompt is the shared system prompt + question
// rendered with the model's chat template (exactly the prompt of an SFT/GRPO row), the answer
// is the SQL of the last <answer> block (data/format.h extract_answer_sql), run read-only on the
// dataset's database, and it is correct when its result set matches the gold result under
// data/sql_exec.h's rules (column names ignored, rows a multiset unless the gold query orders,
// numbers normalised). No answer, failing SQL and a result cut at the row cap count as wrong.
// Greedy decoding, one attempt, no retries (the agent's retries are its own measure).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/example.h"
#include "data/sql_exec.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

namespace lathe::pipeline {

struct EvalOptions {
  int max_new_tokens = 160;
  int batch_size = 8;
  data::SqlLimits limits{1000, 2.0};
  std::vector<std::string> unseen_families;  // families held out of training (reported apart)
};

struct Tally {
  int64_t examples = 0, correct = 0;
  double accuracy() const { return examples ? static_cast<double>(correct) / static_cast<double>(examples) : 0.0; }
};

struct EvalReport {
  Tally overall, seen_families, unseen_families;
  int64_t no_answer = 0, sql_errors = 0;
  std::map<std::string, Tally> per_family, per_language;
  // {id, family, language, question, completion, sql, correct, error}
  std::vector<nlohmann::json> predictions;
  double seconds = 0;
  nlohmann::json summary() const;  // everything but the predictions
};

// One answer scored: correct, or why not ("no_answer", "truncated", "wrong_result", or the
// SQL error's message).
struct AnswerScore {
  std::optional<std::string> sql;  // the <answer> SQL, if any
  bool correct = false;
  bool sql_error = false;
  std::string error;
};
AnswerScore score_answer(const data::SqlDatabase& db, const data::Example& example, const std::string& completion,
                         const data::SqlLimits& limits);

// Answers every example with `model` as it is (the caller chooses the active adapters).
// Examples need gold SQL and a gold_result (a labelled split: test.jsonl).
EvalReport evaluate_execution_accuracy(CausalLM& model, const Tokenizer& tokenizer, const ChatTemplate& chat,
                                       const std::string& system_prompt, const data::SqlDatabase& db,
                                       const std::vector<data::Example>& examples, const EvalOptions& options);

}  // namespace lathe::pipeline
