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

// Prompts left-padded to P, completions right-padded to T, in one [N, P + T] batch. When
// every prompt begins with the same Q tokens (the system prompt; Q at least lathe::kMinSharedPrefix
// and short of the shortest prompt), those are kept apart as one row: prefix_ids [1, Q], and
// input_ids holds the rest, [N, P - Q + T], run once for the batch by
// CausalLM::forward_shared_prefix. prompt_width is then P - Q.
struct PackedSequences {
  torch::Tensor input_ids;        // [N, P + T] int64 (without the shared prefix when there is one)
  torch::Tensor attention_mask;   // the same shape, bool: real tokens
  torch::Tensor completion_ids;   // [N, T] int64 (0 in padding)
  torch::Tensor completion_mask;  // [N, T] f32: 1 on completion tokens (a final stop id included)
  int64_t prompt_width = 0;       // P (P - Q)
  torch::Tensor prefix_ids;       // [1, Q] int64, or undefined
};
PackedSequences pack_sequences(const std::vector<std::vector<int32_t>>& prompts,
                               const std::vector<std::vector<int32_t>>& completions, torch::Device device,
                               bool share_prefix = true);

// One forward pass (hidden states only; the shared prefix once) and the chunked log-probs of
// the completion tokens.
TokenLogProbs completion_logprobs(CausalLM& model, const PackedSequences& batch, int64_t chunk_tokens = 1024);

}  // namespace lathe::rl
