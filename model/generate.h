// Batched generation: the one decoding path behind `lathe generate`, GRPO rollouts and the
// server. Prompts are left-padded into one batch, prefilled once, expanded to n samples per
// prompt by copying cache rows, then decoded step by step with a preallocated KV cache;
// finished rows leave the batch.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/sampler.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

namespace lathe {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams params;
};

struct Completion {
  std::vector<int32_t> tokens;        // generated ids (a final stop id included)
  std::string text;                   // decoded; stop strings and stop ids not included
  std::string finish_reason;          // "stop" | "length"
  std::vector<TokenChoice> choices;   // per token, when logprobs or entropy were asked for
};

struct GenerationResult {
  std::vector<std::vector<Completion>> completions;  // [request][sample]
  int64_t prompt_tokens = 0;      // summed over requests (not over samples)
  int64_t generated_tokens = 0;   // summed over every sample
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Called as tokens are produced: (request, sample, new text, the token). The text is the
// UTF-8-complete delta; a final call with token -1 carries any flushed remainder.
using TokenCallback = std::function<void(size_t request, int sample, const std::string& delta, int32_t token)>;

// tokenizer may be null (benchmarks): then there is no text and no stop strings.
GenerationResult generate(CausalLM& model, const Tokenizer* tokenizer, const std::vector<GenerationRequest>& requests,
                          const TokenCallback& on_token = nullptr);

}  // namespace lathe
