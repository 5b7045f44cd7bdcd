#include "serve/openai_protocol.h"

#include <cmath>
#include <limits>
#include <random>

#include "core/error.h"
#include "core/utf8.h"
#include "serve/api_error.h"

namespace lathe::serve {

namespace {

// The largest top-k alternatives a request may ask for (vLLM's default max_logprobs).
constexpr int kMaxLogprobs = 20;

const json* find_field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

[[noreturn]] void bad_type(const char* key, const char* expected, const json& got) {
  throw ApiError(400, std::string("'") + key + "' must be " + expected + ", got " + describe(got), key);
}

std::optional<double> number_field(const json& body, const char* key) {
  const json* v = find_field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad_type(key, "a number", *v);
  return v->get<double>();
}

std::optional<int64_t> integer_field(const json& body, const char* key) {
  const json* v = find_field(body, key);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  // 5.0 is an integer to pydantic's lax mode, and so to vLLM.
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  bad_type(key, "an integer", *v);
}

}  // namespace

std::optional<bool> optional_bool_field(const json& body, const char* key) {
  const json* v = find_field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad_type(key, "true or false", *v);
  return v->get<bool>();
}

namespace {

[[noreturn]] void unsupported(const char* key, const std::string& why) {
  throw ApiError(400, std::string("'") + key + "' is not supported by lathe serve: " + why, key);
}

void refuse_unsupported(const json& body, bool chat) {
  for (const char* key : {"presence_penalty", "frequency_penalty"})
    if (auto v = number_field(body, key); v && *v != 0.0) unsupported(key, "the sampler has no penalties; send 0 or omit it");
  if (auto v = number_field(body, "repetition_penalty"); v && *v != 1.0)
    unsupported("repetition_penalty", "the sampler has no penalties; send 1 or omit it");
  if (auto v = integer_field(body, "min_tokens"); v && *v != 0) unsupported("min_tokens", "send 0 or omit it");
  if (const json* v = find_field(body, "logit_bias"); v && !v->empty()) unsupported("logit_bias", "omit it");
  if (auto v = integer_field(body, "best_of"); v && *v > 1) unsupported("best_of", "send 1 or omit it");
  if (auto v = optional_bool_field(body, "use_beam_search"); v && *v) unsupported("use_beam_search", "only sampling is supported");
  if (find_field(body, "prompt_logprobs")) unsupported("prompt_logprobs", "omit it");
  for (const char* key : {"guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs"})
    if (find_field(body, key)) unsupported(key, "guided decoding is not implemented");
  if (const json* v = find_field(body, "response_format")) {
    if (!v->is_object() || (v->contains("type") && (*v)["type"] != "text"))
      unsupported("response_format", "only {\"type\": \"text\"} is supported");
  }
  if (chat) {
    const json* tools = find_field(body, "tools");
    const json* choice = find_field(body, "tool_choice");
    const bool none = choice && choice->is_string() && *choice == "none";
    if (tools && !tools->empty() && !none) unsupported("tools", "tool calling is not implemented");
  }
}

std::vector<std::string> parse_stop(const json& body) {
  const json* v = find_field(body, "stop");
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) bad_type("stop", "a string or a list of strings", *v);
  std::vector<std::string> out;
  for (const auto& s : *v) {
    if (!s.is_string()) bad_type("stop", "a string or a list of strings", *v);
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::vector<int32_t> parse_ids(const json& v, const char* key) {
  std::vector<int32_t> out;
  for (const auto& id : v) {
    if (!id.is_number_integer()) bad_type(key, "a list of integer token ids", v);
    const int64_t x = id.get<int64_t>();
    if (x < 0 || x > std::numeric_limits<int32_t>::max())
      throw ApiError(400, "Token id " + std::to_string(x) + " in '" + key + "' is out of vocabulary.", key);
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

bool all_of_kind(const json& array, bool (json::*is)() const noexcept) {
  for (const auto& v : array)
    if (!(v.*is)()) return false;
  return true;
}

// Code points, as Python's len() counts them.
size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

json byte_list(const std::string& bytes) {
  json out = json::array();
  for (unsigned char c : bytes) out.push_back(static_cast<int>(c));
  return out;
}

}  // namespace

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string describe(const json& value) {
  if (value.is_array()) return "a list of " + std::to_string(value.size());
  if (value.is_object()) return "an object";
  if (value.is_string() && value.get_ref<const std::string&>().size() > 80)
    return dump(value.get_ref<const std::string&>().substr(0, 80)) + "...";
  return dump(value);
}

GenerationFields parse_generation_fields(const json& body, bool chat) {
  refuse_unsupported(body, chat);
  GenerationFields f;
  if (const json* m = find_field(body, "model")) {
    if (!m->is_string()) bad_type("model", "a string", *m);
    f.model = m->get<std::string>();
  }
  SamplingParams& p = f.params;
  if (auto t = number_field(body, "temperature")) {
    if (*t < 0) throw ApiError(400, "temperature must be non-negative, got " + dump(*t) + ".", "temperature");
    p.temperature = *t;
  }
  if (auto v = number_field(body, "top_p")) {
    if (!(*v > 0 && *v <= 1)) throw ApiError(400, "top_p must be in (0, 1], got " + dump(*v) + ".", "top_p");
    p.top_p = *v;
  }
  if (auto v = integer_field(body, "top_k")) {
    if (*v < -1 || *v > std::numeric_limits<int32_t>::max())
      throw ApiError(400, "top_k must be 0 or -1 (disable), or at least 1, got " + std::to_string(*v) + ".", "top_k");
    p.top_k = static_cast<int>(*v <= 0 ? 0 : *v);
  }
  if (auto v = integer_field(body, "n")) {
    if (*v < 1) throw ApiError(400, "n must be at least 1, got " + std::to_string(*v) + ".", "n");
    if (*v > 4096) throw ApiError(400, "n must be at most 4096, got " + std::to_string(*v) + ".", "n");
    p.n = static_cast<int>(*v);
  }
  if (auto v = integer_field(body, "seed")) p.seed = static_cast<uint64_t>(*v);
  p.stop = parse_stop(body);
  if (const json* v = find_field(body, "stop_token_ids")) {
    if (!v->is_array()) bad_type("stop_token_ids", "a list of integer token ids", *v);
    p.stop_token_ids = parse_ids(*v, "stop_token_ids");
  }
  if (auto v = optional_bool_field(body, "ignore_eos")) p.ignore_eos = *v;
  if (auto v = optional_bool_field(body, "include_stop_str_in_output")) p.include_stop_str_in_output = *v;

  const char* max_key = "max_tokens";
  auto max_tokens = integer_field(body, "max_tokens");
  if (chat && !max_tokens) {
    max_tokens = integer_field(body, "max_completion_tokens");
    max_key = "max_completion_tokens";
  }
  if (max_tokens) {
    if (*max_tokens < 1)
      throw ApiError(400, std::string(max_key) + " must be at least 1, got " + std::to_string(*max_tokens) + ".", max_key);
    f.max_tokens = *max_tokens;
  }

  if (chat) {
    f.logprobs = optional_bool_field(body, "logprobs").value_or(false);
    if (auto k = integer_field(body, "top_logprobs")) {
      if (*k < 0 || *k > kMaxLogprobs)
        throw ApiError(400, "top_logprobs must be between 0 and " + std::to_string(kMaxLogprobs) + ", got " +
                                std::to_string(*k) + ".",
                       "top_logprobs");
      if (*k > 0 && !f.logprobs)
        throw ApiError(400, "when using `top_logprobs`, `logprobs` must be set to true.", "top_logprobs");
      f.top_logprobs = static_cast<int>(*k);
    }
  } else {
    if (auto k = integer_field(body, "logprobs")) {
      if (*k < 0) throw ApiError(400, "logprobs must be non-negative, got " + std::to_string(*k) + ".", "logprobs");
      if (*k > kMaxLogprobs)
        throw ApiError(400, "Requested sample logprobs of " + std::to_string(*k) +
                                ", which is greater than max allowed: " + std::to_string(kMaxLogprobs),
                       "logprobs");
      f.logprobs = true;
      f.top_logprobs = static_cast<int>(*k);
    }
    f.echo = optional_bool_field(body, "echo").value_or(false);
    if (f.echo && f.logprobs) unsupported("echo", "echo with logprobs needs prompt logprobs; drop one of them");
  }
  if (f.logprobs) p.logprobs = f.top_logprobs;
  f.return_token_ids = optional_bool_field(body, "return_token_ids").value_or(false);

  f.stream = optional_bool_field(body, "stream").value_or(false);
  if (const json* so = find_field(body, "stream_options")) {
    if (!f.stream) throw ApiError(400, "Stream options can only be defined when `stream=True`.", "stream_options");
    if (!so->is_object()) bad_type("stream_options", "an object", *so);
    f.include_usage = optional_bool_field(*so, "include_usage").value_or(false);
    f.continuous_usage = f.include_usage && optional_bool_field(*so, "continuous_usage_stats").value_or(false);
  }
  return f;
}

json parse_request_body(const std::string& text) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw ApiError(400, std::string("The request body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) throw ApiError(400, "The request body must be a JSON object.");
  return body;
}

std::string optional_string_field(const json& body, const char* key) {
  const json* v = find_field(body, key);
  if (!v) return "";
  if (!v->is_string()) bad_type(key, "a string", *v);
  return v->get<std::string>();
}

LoadLoraRequest parse_load_lora_request(const json& body) {
  LoadLoraRequest out;
  out.name = optional_string_field(body, "lora_name");
  out.path = optional_string_field(body, "lora_path");
  if (auto in_place = optional_bool_field(body, "load_inplace")) out.in_place = *in_place;
  return out;
}

int resolve_max_tokens(const GenerationFields& f, bool chat, int64_t prompt_tokens, int64_t max_model_len,
                       int64_t cap) {
  if (prompt_tokens >= max_model_len)
    throw ApiError(400, "This model's maximum context length is " + std::to_string(max_model_len) +
                            " tokens. However, your request has " + std::to_string(prompt_tokens) +
                            " input tokens. Please reduce the length of the input messages.",
                   chat ? "messages" : "prompt");
  int64_t max_tokens;
  if (f.max_tokens) {
    max_tokens = *f.max_tokens;
    if (cap > 0 && max_tokens > cap)
      throw ApiError(400, "max_tokens " + std::to_string(max_tokens) + " exceeds this server's per-request limit of " +
                              std::to_string(cap) + " (--max-tokens-cap).",
                     "max_tokens");
  } else {
    max_tokens = chat ? max_model_len - prompt_tokens : 16;
    if (cap > 0) max_tokens = std::min(max_tokens, cap);
  }
  if (prompt_tokens + max_tokens > max_model_len)
    throw ApiError(400, "'max_tokens' or 'max_completion_tokens' is too large: " + std::to_string(max_tokens) +
                            ". This model's maximum context length is " + std::to_string(max_model_len) +
                            " tokens and your request has " + std::to_string(prompt_tokens) + " input tokens (" +
                            std::to_string(max_tokens) + " > " + std::to_string(max_model_len) + " - " +
                            std::to_string(prompt_tokens) + ").",
                   "max_tokens");
  return static_cast<int>(max_tokens);
}

void check_token_ids(const std::vector<int32_t>& ids, const Tokenizer& tokenizer, const std::string& field) {
  for (int32_t id : ids)
    if (id < 0 || id >= tokenizer.vocab_size())
      throw ApiError(400, "Token id " + std::to_string(id) + " in '" + field + "' is out of vocabulary (0.." +
                              std::to_string(tokenizer.vocab_size() - 1) + ").",
                     field);
}

std::vector<PromptInput> parse_completion_prompts(const json& body, const Tokenizer& tokenizer) {
  const json* prompt = find_field(body, "prompt");
  if (!prompt) throw ApiError(400, "'prompt' is required.", "prompt");
  EncodeOptions enc;
  enc.add_bos = optional_bool_field(body, "add_special_tokens").value_or(true) && tokenizer.add_bos_token();
  auto from_text = [&](const std::string& text) { return PromptInput{tokenizer.encode(text, enc), text}; };
  auto from_ids = [&](const json& ids) {
    PromptInput in{parse_ids(ids, "prompt"), ""};
    check_token_ids(in.ids, tokenizer, "prompt");
    in.text = tokenizer.decode(in.ids);
    return in;
  };
  std::vector<PromptInput> out;
  const char* shapes = "a string, a list of strings, a list of token ids or a list of lists of token ids";
  if (prompt->is_string()) {
    out.push_back(from_text(prompt->get<std::string>()));
  } else if (prompt->is_array()) {
    if (prompt->empty()) throw ApiError(400, "'prompt' must not be an empty list.", "prompt");
    if (all_of_kind(*prompt, &json::is_number_integer)) {
      out.push_back(from_ids(*prompt));
    } else if (all_of_kind(*prompt, &json::is_string)) {
      for (const auto& s : *prompt) out.push_back(from_text(s.get<std::string>()));
    } else if (all_of_kind(*prompt, &json::is_array)) {
      for (const auto& ids : *prompt) out.push_back(from_ids(ids));
    } else {
      bad_type("prompt", shapes, *prompt);
    }
  } else {
    bad_type("prompt", shapes, *prompt);
  }
  for (const auto& p : out)
    if (p.ids.empty()) throw ApiError(400, "Prompt cannot be empty.", "prompt");
  return out;
}

std::vector<ChatMessage> parse_chat_messages(const json& body) {
  const json* messages = find_field(body, "messages");
  if (!messages) throw ApiError(400, "'messages' is required.", "messages");
  if (!messages->is_array() || messages->empty())
    throw ApiError(400, "'messages' must be a non-empty list of {role, content} objects.", "messages");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw ApiError(400, where + " must be an object with a string 'role'.", "messages");
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";  // OpenAI's newer name for the system role
    if (role != "system" && role != "user" && role != "assistant")
      throw ApiError(400, where + " has role '" + role + "'; lathe serve supports system, user and assistant.",
                     "messages");
    std::string content;
    const json* c = find_field(m, "content");
    if (c && c->is_string()) {
      content = c->get<std::string>();
    } else if (c && c->is_array()) {
      // Text parts, joined by newlines as vLLM joins them for string-content templates.
      for (const auto& part : *c) {
        // Compared as JSON, not read with value(): a part whose "type" is not a string must be a
        // 400, not nlohmann's type_error (a 500).
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
            !part["text"].is_string())
          throw ApiError(400, where + " has a content part that is not {\"type\": \"text\", \"text\": ...}; only text "
                                      "is supported.",
                         "messages");
        if (!content.empty()) content += "\n";
        content += part["text"].get<std::string>();
      }
    } else if (c) {
      throw ApiError(400, where + " content must be a string or a list of text parts.", "messages");
    }
    out.push_back({role, content});
  }
  return out;
}

std::vector<int32_t> encode_chat(const json& body, const std::vector<ChatMessage>& messages, const ChatTemplate& chat,
                                 const Tokenizer& tokenizer) {
  const bool add_generation_prompt = optional_bool_field(body, "add_generation_prompt").value_or(true);
  const bool continue_final = optional_bool_field(body, "continue_final_message").value_or(false);
  std::string rendered;
  try {
    if (continue_final) {
      if (add_generation_prompt)
        throw ApiError(400, "Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
                       "continue_final_message");
      if (messages.back().role != "assistant")
        throw ApiError(400, "continue_final_message needs the last message to be the assistant's.",
                       "continue_final_message");
      // The reply continues the final assistant message: render the turn open, prefilled.
      std::vector<ChatMessage> head(messages.begin(), messages.end() - 1);
      rendered = chat.render(head, true, messages.back().content);
    } else {
      rendered = chat.render(messages, add_generation_prompt);
    }
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "messages");
  }
  return encode_rendered_chat(tokenizer, rendered);
}

std::string token_text(const Tokenizer& tokenizer, int32_t id) { return sanitize_utf8(tokenizer.token_bytes(id)); }

json completion_logprobs(const Tokenizer& tokenizer, const std::vector<TokenChoice>& choices, int top,
                         size_t& text_offset) {
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
  for (const auto& c : choices) {
    const std::string text = token_text(tokenizer, c.token);
    tokens.push_back(text);
    token_logprobs.push_back(std::max(c.logprob, -9999.0f));
    // The sampled token first, then the top alternatives (a dict: a repeated string merges).
    json alternatives = json::object();
    alternatives[text] = std::max(c.logprob, -9999.0f);
    for (int i = 0; i < top && i < static_cast<int>(c.top.size()); ++i) {
      const std::string t = token_text(tokenizer, c.top[i].first);
      if (!alternatives.contains(t)) alternatives[t] = std::max(c.top[i].second, -9999.0f);
    }
    top_logprobs.push_back(alternatives);
    offsets.push_back(text_offset);
    text_offset += code_points(text);
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top_logprobs}, {"text_offset", offsets}};
}

json chat_logprobs(const Tokenizer& tokenizer, const std::vector<TokenChoice>& choices, int top) {
  json content = json::array();
  for (const auto& c : choices) {
    json alternatives = json::array();
    for (int i = 0; i < top && i < static_cast<int>(c.top.size()); ++i) {
      const std::string bytes = tokenizer.token_bytes(c.top[i].first);
      alternatives.push_back({{"token", sanitize_utf8(bytes)},
                              {"logprob", std::max(c.top[i].second, -9999.0f)},
                              {"bytes", byte_list(bytes)}});
    }
    const std::string bytes = tokenizer.token_bytes(c.token);
    content.push_back({{"token", sanitize_utf8(bytes)},
                       {"logprob", std::max(c.logprob, -9999.0f)},
                       {"bytes", byte_list(bytes)},
                       {"top_logprobs", alternatives}});
  }
  return {{"content", content}};
}

json stop_reason(const Completion& completion) {
  if (completion.stop_string) return *completion.stop_string;
  if (completion.stop_token) return *completion.stop_token;
  return nullptr;
}

json usage(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"total_tokens", prompt_tokens + completion_tokens},
          {"completion_tokens", completion_tokens}};
}

std::string random_id(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 32; ++i) id += hex[rng() & 15];
  return id;
}

}  // namespace lathe::serve
