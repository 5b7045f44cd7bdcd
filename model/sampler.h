// Picking the next token from one row of logits: greedy, or temperature -> top-k -> top-p
// sampling (the order transformers' and vLLM's logits processors apply), plus log-probs
// and the entropy of the model's distribution (before temperature, top-k and top-p).
// Each row owns its RNG so a seeded request gives the same tokens in any batch.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <random>
#include <utility>
#include <vector>

namespace lathe {

struct SamplingParams {
  int max_new_tokens = 16;
  double temperature = 1.0;      // 0 = greedy
  double top_p = 1.0;            // 1 = off
  int top_k = 0;                 // 0 or -1 = off
  int n = 1;                     // samples per prompt
  std::optional<uint64_t> seed;  // none = nondeterministic
  std::vector<std::string> stop;       // stop strings (not included in the text)
  std::vector<int32_t> stop_token_ids; // in addition to the tokenizer's stop ids
  bool ignore_eos = false;
  int logprobs = -1;             // -1 none; 0 the chosen token's; k also the top-k alternatives
  bool entropy = false;          // record each step's entropy of the raw distribution (active learning)
  bool include_stop_str_in_output = false;
};

struct TokenChoice {
  int32_t token = 0;
  float logprob = 0;                                 // log-softmax of the raw logits
  std::vector<std::pair<int32_t, float>> top;        // top-k alternatives when asked
  float entropy = 0;  // -sum_v p(v) log p(v) of softmax(raw logits), in nats, when asked
};

class RowSampler {
 public:
  RowSampler(const SamplingParams& params, uint64_t seed);
  // logits: one row of V f32 values.
  TokenChoice pick(const float* logits, int64_t vocab);

 private:
  int32_t sample(const float* logits, int64_t vocab);
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> order_;
};

}  // namespace lathe
