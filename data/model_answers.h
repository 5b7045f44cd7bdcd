// Asking an in-process model the inventory questions, as selection (data/select.h) and
// execution-accuracy evaluation (data/evaluate.h) both do: the prompt is the shared system
// prompt and the question rendered with the model's chat template up to the assistant turn
// (exactly the prompt part of an SFT row from data/format.h), decoding is model/generate.h,
// and the SQL is read from the completion's <answer> block (extract_answer_sql).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/example.h"
#include "data/sql_exec.h"
#include "model/chat_template.h"
#include "model/generate.h"
#include "model/model_io.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

namespace lathe::data {

struct QuestionModel {
  CausalLM model{nullptr};
  const Tokenizer* tokenizer = nullptr;
  const ChatTemplate* chat = nullptr;
  std::string system_prompt;  // the one the SFT data was formatted with (dataset_system_prompt)
};

// The loaded model (which must outlive the result) with the dataset's system prompt.
QuestionModel make_question_model(LoadedModel& loaded, const std::string& system_prompt);

// load_model() plus, when adapter_dir is not empty, that PEFT adapter (active, as "default").
LoadedModel load_model_with_adapter(const std::string& model_dir, const std::string& adapter_dir,
                                    torch::Device device, torch::ScalarType dtype,
                                    const std::string& chat_template_override = "");

// Token ids of [system, user: question] with the generation prompt.
std::vector<int32_t> question_prompt_ids(const QuestionModel& qm, const std::string& question);

struct AnswerOptions {
  SamplingParams sampling;  // n, temperature, max_new_tokens, entropy … as for generate()
  uint64_t seed = 1;        // question i samples with a seed derived from this and its id
  int batch_size = 8;       // prompts per generate() call
};

// completions[i][s]: sample s for examples[i]. Decoding stops at the tokenizer's stop ids or
// after "</answer>" (kept in the text), whichever comes first. A seeded request's samples
// depend only on the seed and the example id, never on batch makeup or pool order.
std::vector<std::vector<Completion>> answer_questions(QuestionModel& qm, const std::vector<Example>& examples,
                                                      const AnswerOptions& options);

// A completion's <answer> SQL run read-only: sql is nullopt without an <answer> block,
// result is nullopt when there was no SQL or it failed; error names why.
struct ExecutedAnswer {
  std::optional<std::string> sql;
  std::optional<SqlResult> result;
  std::string error;  // "no_answer" | the SqlError message
};
ExecutedAnswer execute_answer(const SqlDatabase& db, const std::string& completion, const SqlLimits& limits);

}  // namespace lathe::data
