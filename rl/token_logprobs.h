// Per-token log-probabilities (and entropies) of completions under the model, computed from
// the final hidden states in chunks of tokens: each chunk's logits [chunk, V] exist only
// inside the chunk, in the forward pass and again (recomputed) in the backward pass, so a full
// [N, T, V] logits or log-softmax tensor is never materialised, nor kept for autograd.
// reference_token_logprobs is the plain version (project_logits + log_softmax + gather) that
// the chunked one is tested against.
//
// Legend: N sequences, P prompt width (left-padded), T completion width (right-padded),
// C hidden size, V vocabulary.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/transformer.h"

namespace lathe::rl {

struct TokenLogProbs {
  torch::Tensor logp;     // [N, T] f32, differentiable w.r.t. the hidden states
  torch::Tensor entropy;  // [N, T] f32, no gradient
};

// hidden [N, T, C] (the states that predict each target), targets [N, T] int64.
TokenLogProbs chunked_token_logprobs(CausalLM& model, const torch::Tensor& hidden, const torch::Tensor& targets,
                                     int64_t chunk_tokens = 1024);
TokenLogProbs reference_token_logprobs(CausalLM& model, const torch::Tensor& hidden, const torch::Tensor& targets);

// Prompts left-padded to P, completions right-padded to T, in one [N, P + T] batch.
struct PackedSequences {
  torch::Tensor input_ids;        // [N, P + T] int64
  torch::Tensor attention_mask;   // [N, P + T] bool: real tokens
  torch::Tensor completion_ids;   // [N, T] int64 (0 in padding)
  torch::Tensor completion_mask;  // [N, T] f32: 1 on completion tokens (a final stop id included)
  int64_t prompt_width = 0;       // P
};
PackedSequences pack_sequences(const std::vector<std::vector<int32_t>>& prompts,
                               const std::vector<std::vector<int32_t>>& completions, torch::Device device);

// One forward pass (hidden states only) and the chunked log-probs of the completion tokens.
TokenLogProbs completion_logprobs(CausalLM& model, const PackedSequences& batch, int64_t chunk_tokens = 1024);

}  // namespace lathe::rl
