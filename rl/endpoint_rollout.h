// GRPO rollouts sampled by a vLLM-compatible server instead of in-process: `lathe serve` or
// vLLM itself (run with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True). Before each rollout the trainer
// publishes the current adapter (saved in PEFT layout, then POST /v1/load_lora_adapter with
// load_inplace), and samples G completions per prompt from POST /v1/completions with the
// prompt as token ids, n = G, the prompt's seed and return_token_ids, so the trainer scores and recomputes
// log-probs on exactly the tokens the server sampled. The server reads the adapter from the
// path we send: it must see the same file system (loopback, or a shared volume).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/openai_client.h"
#include "model/generate.h"
#include "model/lora.h"
#include "model/transformer.h"

namespace lathe::rl {

struct EndpointRolloutOptions {
  std::string endpoint;                    // base URL, e.g. http://127.0.0.1:8000
  std::string api_key;                     // Bearer token, when the server wants one
  std::string adapter_name = "lathe-grpo"; // the name the policy is served under
  double timeout_seconds = 600;            // one rollout's completions must arrive within it
};

class EndpointSampler {
 public:
  // publish_dir: where adapter versions are written (made absolute; created when missing).
  EndpointSampler(EndpointRolloutOptions options, const std::string& publish_dir);

  // Saves `adapter` of `model` as version `version` and makes the server serve it under
  // adapter_name, replacing the previous version (whose folder is then removed).
  void publish(CausalLM& model, const std::string& adapter, const LoraConfig& config, int64_t version);

  // Samples every request (n completions of one prompt, its own seed) through
  // /v1/completions, all requests in flight at once. Result shape and fields as generate()'s:
  // tokens with a final stop id, text, finish_reason. Throws lathe::Error naming the endpoint
  // when the server fails, answers without token_ids, or sends ids outside `vocab_size`.
  GenerationResult sample(const std::vector<GenerationRequest>& requests, int64_t vocab_size) const;

  const std::string& endpoint() const { return options_.endpoint; }

 private:
  EndpointRolloutOptions options_;
  OpenAiClient client_;
  std::string publish_dir_;
  std::string published_;  // folder of the version the server has now; "" before the first
};

}  // namespace lathe::rl
