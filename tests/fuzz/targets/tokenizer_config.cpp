// Fuzz target: the files beside tokenizer.json that set special tokens and the chat format:
// tokenizer_config.json ---- config.json ---- generation_config.json (a missing part = no such
// file). A valid tokenizer.json sits beside them. The chat template they select renders and
// encodes a short conversation.
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "tests/fuzz/fuzz_target.h"

#include <filesystem>

namespace lathe::fuzz {

void fuzz_tokenizer_config(const std::string& input) {
  const std::string dir = fresh_scratch_dir("tokenizer_config");
  std::filesystem::copy_file(tiny_tokenizer_dir() + "/tokenizer.json", dir + "/tokenizer.json");
  const std::vector<std::string> parts = split_parts(input, 3);
  const char* names[] = {"tokenizer_config.json", "config.json", "generation_config.json"};
  for (size_t i = 0; i < parts.size(); ++i) write_scratch_file(std::string("tokenizer_config/") + names[i], parts[i]);

  const std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(dir);
  const ChatTemplate chat = load_chat_template(dir, tokenizer->eos_text(), tokenizer->bos_text());
  const std::vector<ChatMessage> messages = {
      {"system", "You answer with SQL."}, {"user", "上海有几辆宝马？"}, {"assistant", "<answer>\nSELECT 1;\n</answer>"}};
  encode_rendered_chat(*tokenizer, chat.render(messages, /*add_generation_prompt=*/false));
  chat.render_segments(messages, /*add_generation_prompt=*/true, "<reasoning>");
}

}  // namespace lathe::fuzz
