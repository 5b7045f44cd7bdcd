// Batched generation: the one decoding path behind `lathe generate` and GRPO rollouts (the
// server drives the same BatchDecoder step by step). All requests are admitted at once —
// prefilled together, expanded to n samples per prompt — then decoded step by step with a
// preallocated KV cache; finished rows leave the batch.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/batch_decoder.h"
#include "model/sampler.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

namespace lathe {

struct GenerationResult {
  std::vector<std::vector<Completion>> completions;  // [request][sample]
  int64_t prompt_tokens = 0;      // summed over requests (not over samples)
  int64_t generated_tokens = 0;   // summed over every sample
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Called as tokens are produced: (request, sample, new text, the token). The text is the
// UTF-8-complete delta that will not be taken back; a final call with token -1 carries the
// rest of the sample's text.
using TokenCallback = std::function<void(size_t request, int sample, const std::string& delta, int32_t token)>;

// tokenizer may be null (benchmarks): then there is no text and no stop strings.
GenerationResult generate(CausalLM& model, const Tokenizer* tokenizer, const std::vector<GenerationRequest>& requests,
                          const TokenCallback& on_token = nullptr, const BatchDecoderOptions& options = {});

}  // namespace lathe
