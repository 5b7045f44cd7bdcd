// Fuzz target: one JSONL file read by each loader that takes JSONL from users: dataset
// examples (train/val/test.jsonl), imported user questions (`lathe data build` collect.import),
// SFT rows (messages or prompt/completion, through the chat template and the tokenizer), GRPO
// prompt rows, and the agent's eval questions.
#include "agent/eval.h"
#include "data/collect.h"
#include "data/example.h"
#include "rl/rollout.h"
#include "tests/fuzz/fuzz_target.h"
#include "train/sft_data.h"

namespace lathe::fuzz {

void fuzz_dataset_jsonl(const std::string& input) {
  const std::string path = write_scratch_file("rows.jsonl", input);
  const Tokenizer& tokenizer = tiny_tokenizer();
  const ChatTemplate& chat = tiny_chat_template();
  unless_rejected([&] { data::read_examples_jsonl(path); });
  unless_rejected([&] { data::import_user_questions(path); });
  unless_rejected([&] {
    SftDataOptions options;
    options.max_seq_len = 512;
    load_sft_dataset(path, tokenizer, chat, options);
  });
  unless_rejected([&] { sft_corpus_text(path, chat, tokenizer.eos_text()); });
  unless_rejected([&] { rl::load_prompt_rows(path, chat, tokenizer, /*max_prompt_len=*/256); });
  unless_rejected([&] { agent::read_eval_questions(path); });
}

}  // namespace lathe::fuzz
