// Chat formatting for the template families lathe supports, rendered byte-exactly as the
// models' own Jinja templates render them. Recognised from tokenizer_config.json's
// chat_template text, or named in a config.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace lathe {

struct ChatMessage {
  std::string role;     // "system" | "user" | "assistant"
  std::string content;
};

enum class ChatFormat {
  Plain,    // tiny models: "<|system|>\n...\n<|user|>\n...\n<|assistant|>\n..." + eos
  ChatML,   // Qwen: <|im_start|>role\n...<|im_end|>\n
  Llama3,   // <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  Llama2,   // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s> (and Mistral's variant)
};

// One piece of a rendered conversation. SFT masks the loss to the trainable pieces: what the
// model itself must produce after the generation prompt (the assistant's content and the
// format's end token).
struct ChatSegment {
  std::string text;
  bool trainable = false;
};

struct ChatTemplate {
  ChatFormat format = ChatFormat::Plain;
  std::string default_system;   // e.g. Qwen2.5's "You are Qwen, created by Alibaba Cloud. ..."
  std::string bos_text;         // "<s>", "<|begin_of_text|>"
  std::string eos_text;         // token that closes an assistant turn in this format
  bool mistral_variant = false; // Llama2 family: Mistral's [INST] spacing, system folded into user
  std::string llama3_date_header;  // Llama 3.1+: "Cutting Knowledge Date: ...\nToday Date: ...\n\n"

  // Renders messages. add_generation_prompt opens an assistant turn; assistant_prefill is
  // appended after it (the reply is forced to begin with that text, e.g. "<reasoning>").
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const std::string& assistant_prefill = "") const;
  // The same text as render(), cut into prompt and trainable pieces (adjacent pieces with
  // the same flag are merged); concatenating the texts gives render()'s result exactly.
  std::vector<ChatSegment> render_segments(const std::vector<ChatMessage>& messages,
                                           bool add_generation_prompt,
                                           const std::string& assistant_prefill = "") const;
};

ChatFormat chat_format_from_name(const std::string& name);  // plain|chatml|llama3|llama2|mistral
std::string chat_format_name(ChatFormat format);

// Reads MODEL_DIR/tokenizer_config.json's chat_template (string or list form) and
// recognises the family; a folder without one gets the Plain template. `override_name`
// (from a config) wins when non-empty.
ChatTemplate load_chat_template(const std::string& model_dir, const std::string& eos_text,
                                const std::string& bos_text, const std::string& override_name = "");

// Ids of a rendered conversation. Special-token text in it becomes its id; BOS is added
// only when the template did not already write it and the tokenizer adds BOS to plain text
// (the Plain template on SentencePiece models).
std::vector<int32_t> encode_rendered_chat(const Tokenizer& tokenizer, const std::string& rendered);

}  // namespace lathe
