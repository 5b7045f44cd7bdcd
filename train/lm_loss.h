// Causal-LM cross-entropy over the target positions only. The final hidden states are
// gathered at the N scored positions before the lm_head, so the [B, T, V] logits of padding
// and prompt positions are never materialised (the largest tensor in small-model SFT).
// Legend: B batch, T length, C hidden, V vocab, N scored positions.
#pragma once
#include <torch/torch.h>

#include "model/transformer.h"

namespace lathe {

struct LmLoss {
  torch::Tensor loss_sum;  // scalar f32, sum of -log p(target) over scored positions
  int64_t tokens = 0;      // N
  int64_t correct = 0;     // argmax == target
};

// input_ids, attention_mask, labels [B, T] int64 (labels -100 = not scored; right padding).
LmLoss causal_lm_loss(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const torch::Tensor& labels);

}  // namespace lathe
