// The OpenAI/vLLM request and response bodies of /v1/completions and /v1/chat/completions:
// reading a request strictly (a wrong type or out-of-range value is a 400 naming the field,
// unknown fields are ignored as vLLM ignores them) and writing responses, stream chunks and
// logprobs in vLLM's shapes (../shared/docs/INTEROP.md).
//
// Departures from vLLM: sampling features the sampler lacks (presence/frequency/repetition
// penalties, min_tokens, logit_bias, best_of, beam search, guided decoding, tools) are refused
// with a 400 naming the field instead of being half-applied; echo with logprobs (prompt
// logprobs) is refused likewise.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/batch_decoder.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

namespace lathe::serve {

using nlohmann::json;

// A request body as JSON: 400 when it is not valid JSON or not an object.
json parse_request_body(const std::string& text);

// body[key] as a string; "" when absent or null, a 400 naming the key for another type.
std::string optional_string_field(const json& body, const char* key);

// body[key] as a bool; nullopt when absent or null, a 400 naming the key for another type.
std::optional<bool> optional_bool_field(const json& body, const char* key);

// /v1/load_lora_adapter's body (vLLM's fields): lora_name, lora_path, load_inplace.
struct LoadLoraRequest {
  std::string name;
  std::string path;
  bool in_place = false;  // replace a loaded adapter of that name
};
LoadLoraRequest parse_load_lora_request(const json& body);

// What a completions or chat body asks of generation, before the prompt is known.
struct GenerationFields {
  std::string model;                 // as named in the request ("" = the base model)
  SamplingParams params;             // max_new_tokens is filled by resolve_max_tokens()
  std::optional<int64_t> max_tokens; // as asked (max_tokens or max_completion_tokens)
  bool stream = false;
  bool include_usage = false;        // stream_options.include_usage
  bool continuous_usage = false;     // stream_options.continuous_usage_stats
  bool echo = false;                 // completions: the prompt text leads each choice
  bool logprobs = false;             // logprobs were asked for
  int top_logprobs = 0;              // alternatives per token
  bool return_token_ids = false;     // vLLM's extension: prompt and generated ids in choices
};

// Reads the sampling and streaming fields. chat picks chat's logprobs form (bool +
// top_logprobs) over completions' (an int).
GenerationFields parse_generation_fields(const json& body, bool chat);

// max_tokens for one prompt of `prompt_tokens`, as vLLM resolves it (completions default 16,
// chat default the rest of the context), with the context checks (400s) and the server's cap
// (0 = none).
int resolve_max_tokens(const GenerationFields& fields, bool chat, int64_t prompt_tokens, int64_t max_model_len,
                       int64_t max_tokens_cap);

struct PromptInput {
  std::vector<int32_t> ids;
  std::string text;  // the prompt as text (decoded for token prompts), for echo
};

// /v1/completions "prompt": a string, a list of strings, a list of token ids, or a list of
// such lists. Text gets BOS as the tokenizer's config asks (vLLM's add_special_tokens=True).
std::vector<PromptInput> parse_completion_prompts(const json& body, const Tokenizer& tokenizer);

// "messages" as chat messages: string content or a list of {"type": "text"} parts.
std::vector<ChatMessage> parse_chat_messages(const json& body);

// Renders and encodes a conversation; add_generation_prompt / continue_final_message as vLLM.
std::vector<int32_t> encode_chat(const json& body, const std::vector<ChatMessage>& messages, const ChatTemplate& chat,
                                 const Tokenizer& tokenizer);

// Checks token ids (400 for an id outside the vocabulary).
void check_token_ids(const std::vector<int32_t>& ids, const Tokenizer& tokenizer, const std::string& field);

// A token as text (invalid UTF-8 replaced) and its bytes.
std::string token_text(const Tokenizer& tokenizer, int32_t id);

// Completions logprobs {tokens, token_logprobs, top_logprobs, text_offset} for `choices`,
// offsets counted (in code points, as Python's len) from `text_offset`.
json completion_logprobs(const Tokenizer& tokenizer, const std::vector<TokenChoice>& choices, int top,
                         size_t& text_offset);
// Chat logprobs {"content": [{token, logprob, bytes, top_logprobs}]}.
json chat_logprobs(const Tokenizer& tokenizer, const std::vector<TokenChoice>& choices, int top);

// vLLM's stop_reason: the stop string, the stop id, or null.
json stop_reason(const Completion& completion);

json usage(int64_t prompt_tokens, int64_t completion_tokens);

// "cmpl-<32 hex>" / "chatcmpl-<32 hex>"
std::string random_id(const std::string& prefix);

// Serialises without throwing on invalid UTF-8 (replaced by U+FFFD).
std::string dump(const json& value);

// A request value for an error message: scalars as JSON (long strings cut), lists and
// objects by kind only — a deeply nested body must not be serialised (recursion).
std::string describe(const json& value);

}  // namespace lathe::serve
