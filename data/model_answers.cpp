// Prompting an in-process model with inventory questions and running its SQL answers.
#include "data/model_answers.h"

#include <algorithm>

#include "core/error.h"
#include "data/format.h"
#include "data/rng.h"
#include "model/lora.h"

namespace lathe::data {

QuestionModel make_question_model(LoadedModel& loaded, const std::string& system_prompt) {
  return {loaded.model, loaded.tokenizer.get(), &loaded.chat, system_prompt};
}

LoadedModel load_model_with_adapter(const std::string& model_dir, const std::string& adapter_dir,
                                    torch::Device device, torch::ScalarType dtype,
                                    const std::string& chat_template_override) {
  LoadedModel loaded = load_model(model_dir, device, dtype, chat_template_override);
  if (!adapter_dir.empty()) {
    load_peft_adapter(loaded.model, "default", adapter_dir);
    loaded.model->eval();
  }
  return loaded;
}

std::vector<int32_t> question_prompt_ids(const QuestionModel& qm, const std::string& question) {
  const std::vector<ChatMessage> messages{{"system", qm.system_prompt}, {"user", question}};
  return encode_rendered_chat(*qm.tokenizer, qm.chat->render(messages, /*add_generation_prompt=*/true));
}

std::vector<std::vector<Completion>> answer_questions(QuestionModel& qm, const std::vector<Example>& examples,
                                                      const AnswerOptions& options) {
  if (options.batch_size < 1) fail("answer_questions: batch_size must be at least 1");
  std::vector<std::vector<Completion>> out;
  out.reserve(examples.size());
  for (size_t begin = 0; begin < examples.size(); begin += options.batch_size) {
    const size_t end = std::min(examples.size(), begin + static_cast<size_t>(options.batch_size));
    std::vector<GenerationRequest> requests;
    for (size_t i = begin; i < end; ++i) {
      GenerationRequest request{question_prompt_ids(qm, examples[i].question), options.sampling};
      request.params.seed = options.seed ^ stable_hash(examples[i].id);
      request.params.stop.push_back("</answer>");
      request.params.include_stop_str_in_output = true;
      requests.push_back(std::move(request));
    }
    GenerationResult result = generate(qm.model, qm.tokenizer, requests);
    for (auto& samples : result.completions) out.push_back(std::move(samples));
  }
  return out;
}

ExecutedAnswer execute_answer(const SqlDatabase& db, const std::string& completion, const SqlLimits& limits) {
  ExecutedAnswer answer;
  answer.sql = extract_answer_sql(completion);
  if (!answer.sql) {
    answer.error = "no_answer";
    return answer;
  }
  try {
    answer.result = db.query(*answer.sql, limits);
  } catch (const SqlError& e) {
    answer.error = e.what();
  }
  return answer;
}

}  // namespace lathe::data
