// Fuzz target: an HTTP request body as `lathe serve` reads it, through the same functions in
// the same order as its handlers (serve/server.cpp): /v1/completions (generation fields,
// prompts, max_tokens against a 256-token context), /v1/chat/completions (fields, messages,
// the ChatML template, encoding) and /v1/load_lora_adapter. A rejection is the ApiError that
// becomes the 4xx answer; any other exception would reach the client as a 500.
#include "serve/api_error.h"
#include "serve/openai_protocol.h"
#include "tests/fuzz/fuzz_target.h"

namespace lathe::fuzz {

namespace {

constexpr int64_t kServeMaxModelLen = 256;

void generation_request(const serve::json& body, bool chat) {
  const Tokenizer& tokenizer = tiny_tokenizer();
  const serve::GenerationFields fields = serve::parse_generation_fields(body, chat);
  std::vector<serve::PromptInput> prompts;
  if (chat) prompts.push_back({serve::encode_chat(body, serve::parse_chat_messages(body), tiny_chat_template(), tokenizer), ""});
  else prompts = serve::parse_completion_prompts(body, tokenizer);
  for (const auto& p : prompts)
    serve::resolve_max_tokens(fields, chat, static_cast<int64_t>(p.ids.size()), kServeMaxModelLen, /*cap=*/0);
}

template <class F>
void unless_bad_request(F&& f) {
  try {
    f();
  } catch (const serve::ApiError& e) {
    if (e.status < 400 || e.status >= 500) {
      std::fprintf(stderr, "lathe fuzz: a request was refused with status %d: %s\n", e.status, e.what());
      std::abort();
    }
    note_rejection(e);
  }
}

}  // namespace

void fuzz_serve_request(const std::string& input) {
  serve::json body;
  try {
    body = serve::parse_request_body(input);
  } catch (const serve::ApiError& e) {
    note_rejection(e);
    return;
  }
  unless_bad_request([&] { generation_request(body, /*chat=*/false); });
  unless_bad_request([&] { generation_request(body, /*chat=*/true); });
  unless_bad_request([&] { serve::parse_load_lora_request(body); });
}

}  // namespace lathe::fuzz
