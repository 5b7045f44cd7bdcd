// lathe generate --model DIR --prompt TEXT [--chat] [sampling flags] [--json]
// Prints the text, then a line with prompt and decode tokens/s.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "model/generate.h"

namespace lathe::cli {

namespace {
struct GenerateOptions {
  ModelOptions model;
  std::string prompt, system, prefill;
  bool chat = false, json = false;
  SamplingParams sampling;
  uint64_t seed = 0;
  bool seeded = false;
};
}  // namespace

void register_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  o->sampling.max_new_tokens = 128;
  o->sampling.temperature = 0;  // greedy unless asked, as transformers' generate()
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt");
  add_model_options(*cmd, o->model);
  cmd->add_option("--prompt", o->prompt, "prompt text (with --chat: the user message)")->required();
  cmd->add_flag("--chat", o->chat, "wrap the prompt in the model's chat template as a user turn");
  cmd->add_option("--system", o->system, "system message (with --chat)");
  cmd->add_option("--prefill", o->prefill, "text the assistant reply starts with (with --chat), e.g. <reasoning>");
  cmd->add_option("--max-new-tokens", o->sampling.max_new_tokens, "tokens to generate at most")->capture_default_str();
  cmd->add_option("--temperature", o->sampling.temperature, "sampling temperature; 0 = greedy (the default)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "sample among the k most likely (0 = off)")->capture_default_str();
  cmd->add_option("--n", o->sampling.n, "samples to draw")->capture_default_str();
  cmd->add_option("--stop", o->sampling.stop, "stop string (repeatable)");
  auto* seed = cmd->add_option("--seed", o->seed, "seed for reproducible sampling");
  cmd->add_flag("--json", o->json, "print one JSON object with the text, token ids and speeds");
  cmd->callback([o, seed] {
    if (o->sampling.temperature < 0) fail("--temperature must be >= 0");
    if (o->sampling.top_p <= 0 || o->sampling.top_p > 1) fail("--top-p must be in (0, 1]");
    if (o->sampling.n < 1) fail("--n must be >= 1");
    if (seed->count()) o->sampling.seed = o->seed;
    auto loaded = load_model_from_options(o->model);
    std::vector<int32_t> ids;
    if (o->chat) {
      std::vector<ChatMessage> messages;
      if (!o->system.empty()) messages.push_back({"system", o->system});
      messages.push_back({"user", o->prompt});
      ids = encode_rendered_chat(*loaded.tokenizer, loaded.chat.render(messages, true, o->prefill));
    } else {
      EncodeOptions enc;
      enc.add_bos = loaded.tokenizer->add_bos_token();
      ids = loaded.tokenizer->encode(o->prompt, enc);
    }
    if (ids.empty()) fail("the prompt encodes to no tokens and the tokenizer has no BOS; give a prompt");
    auto result = generate(loaded.model, loaded.tokenizer.get(), {{ids, o->sampling}});
    const auto& samples = result.completions[0];
    const double prefill_tps = result.prefill_seconds > 0 ? result.prompt_tokens / result.prefill_seconds : 0;
    const double decode_tps = result.decode_seconds > 0 ? result.generated_tokens / result.decode_seconds : 0;
    if (o->json) {
      nlohmann::json out;
      out["prompt_tokens"] = result.prompt_tokens;
      out["prompt_ids"] = ids;
      out["prefill_tokens_per_s"] = prefill_tps;
      out["decode_tokens_per_s"] = decode_tps;
      nlohmann::json completions = nlohmann::json::array();
      for (const auto& c : samples)
        completions.push_back({{"text", (o->chat ? o->prefill : std::string()) + c.text}, {"token_ids", c.tokens},
                               {"finish_reason", c.finish_reason}});
      out["completions"] = completions;
      out["text"] = completions[0]["text"];
      out["token_ids"] = samples[0].tokens;
      std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return;
    }
    for (size_t i = 0; i < samples.size(); ++i) {
      if (samples.size() > 1) std::cout << "--- sample " << i << "\n";
      std::cout << (o->chat ? o->prefill : o->prompt) << samples[i].text << "\n";
    }
    std::printf("[prompt %lld tokens, %.1f tokens/s; decode %lld tokens, %.1f tokens/s]\n",
                static_cast<long long>(result.prompt_tokens), prefill_tps,
                static_cast<long long>(result.generated_tokens), decode_tps);
  });
}

}  // namespace lathe::cli
