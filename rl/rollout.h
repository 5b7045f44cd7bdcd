// One GRPO rollout: B prompts × G completions sampled through lathe::generate (the one
// decoding path; its KV cache lives only inside that call, so it is freed before the policy
// pass) or a vLLM-compatible endpoint, scored by the rewards, turned into group-relative advantages; plus the per-token
// log-probs of those completions under the policy (old, μ > 1) or the reference (adapters off).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/chat_template.h"
#include "model/generate.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "rl/advantages.h"
#include "rl/rewards.h"
#include "rl/token_logprobs.h"
#include "train/distributed.h"

namespace lathe::rl {

// A dataset row ({"prompt": [messages], …other columns}) and its prompt tokens.
struct PromptRow {
  nlohmann::json row;
  std::vector<int32_t> prompt_ids;
};

// Renders row["prompt"] (a list of {role, content}) with the model's chat template and the
// generation prompt, then tokenizes it. Throws lathe::Error naming `where` on a bad row.
PromptRow encode_prompt_row(const nlohmann::json& row, const ChatTemplate& chat, const Tokenizer& tokenizer,
                            const std::string& where);

// Every non-blank line of a GRPO JSONL file (data.train) as a PromptRow; errors name
// FILE:LINE, as does a prompt longer than max_prompt_len tokens. An empty file is an error.
std::vector<PromptRow> load_prompt_rows(const std::string& path, const ChatTemplate& chat, const Tokenizer& tokenizer,
                                        int64_t max_prompt_len);

struct RolloutOptions {
  int64_t num_generations = 8;   // G
  SamplingParams sampling;       // max_new_tokens, temperature, top_p, top_k (n is set to G)
  uint64_t seed = 0;             // prompt b of this rollout samples with seed + b
  ScaleRewards scale_rewards = ScaleRewards::Group;
  bool mask_truncated_completions = false;
};

struct Rollout {
  // [N], N = B × G, group-major: completion i belongs to prompt i / G.
  std::vector<std::vector<int32_t>> prompt_ids;
  std::vector<std::vector<int32_t>> completion_ids;   // a final stop id included
  std::vector<std::string> completions;
  std::vector<std::string> finish_reasons;            // "stop" | "length"
  std::vector<double> rewards;                        // weighted total
  std::vector<std::string> reward_names;
  std::vector<std::vector<double>> per_reward;        // [reward][N], unweighted
  Advantages advantages;
  double generation_seconds = 0;
  double reward_seconds = 0;
  int64_t generated_tokens = 0;

  int64_t size() const { return static_cast<int64_t>(completions.size()); }
  // [N, T] completion mask for rows [begin, begin + n) packed as `packed`, with truncated
  // completions zeroed when asked.
  torch::Tensor loss_mask(const PackedSequences& packed, int64_t begin, bool mask_truncated) const;
  PackedSequences pack(int64_t begin, int64_t n, torch::Device device) const;
  // reward, reward_std, rewards/<name>/mean|std, frac_reward_zero_std, advantage_std,
  // completions/mean_length|min_length|max_length|clipped_ratio.
  nlohmann::json metrics() const;
};

// Samples G completions per prompt, in-process through lathe::generate.
Rollout collect_rollout(CausalLM& model, const Tokenizer& tokenizer, const std::vector<PromptRow>& prompts,
                        std::vector<WeightedReward>& rewards, const RolloutOptions& options);

// The same with any sampler of [prompt][sample] completions (e.g. an OpenAI-compatible
// endpoint, rl/endpoint_rollout.h); each request carries n = G and its own seed.
using CompletionSampler = std::function<GenerationResult(const std::vector<GenerationRequest>&)>;
Rollout collect_rollout(const CompletionSampler& sample, const std::vector<PromptRow>& prompts,
                        std::vector<WeightedReward>& rewards, const RolloutOptions& options);

// The whole step's rollout from every rank's share, on every rank: rank r generated the groups
// [r·B, (r+1)·B) of `step_prompts` (all ranks' prompts, in order). Advantages are computed over
// the gathered rewards, as TRL gathers them before normalising (scale_rewards=batch then spans
// every rank); times are the slowest rank's, generated tokens the sum. A group of one returns
// `local` unchanged.
Rollout gather_rollout(Distributed& dist, const Rollout& local, const std::vector<PromptRow>& step_prompts,
                       const RolloutOptions& options, const std::string& what);

// Per-token log-probs of every completion [N, T_max] (no gradient), computed in micro-batches
// of `micro_batch` sequences: the rollout policy's (old) or, inside AdaptersDisabled, the
// reference model's. Row i is padded to the widest completion of its micro-batch.
std::vector<torch::Tensor> rollout_logprobs(CausalLM& model, const Rollout& rollout, int64_t micro_batch,
                                            int64_t chunk_tokens);

}  // namespace lathe::rl
