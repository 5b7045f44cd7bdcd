// Causal-LM cross-entropy over the target positions only. The final hidden states are
// gathered at the N scored positions before the lm_head, so the [B, T, V] logits of padding
// and prompt positions are never materialised (the largest tensor in small-model SFT).
//
// The lm_head and the cross-entropy are one step (linear_cross_entropy): it walks the scored
// positions in chunks whose [chunk, V] logits live only inside the chunk, and because the
// loss is a sum whose gradient with respect to the logits is known as soon as they are
// (softmax - one_hot), each chunk's gradients with respect to the hidden states (and the head
// weight, when it trains) are computed right there; backward only scales them by the
// incoming gradient. No [N, V] tensor is kept for autograd, nor recomputed. A bf16 head on a
// CPU without bf16 instructions is multiplied in f32 (model/fast_linear.h says why).
// causal_lm_loss_reference is the plain version (project_logits, then cross_entropy) it is
// tested against; it never shares a prefix.
//
// Legend: B batch, T length, C hidden, V vocab, N scored positions.
#pragma once
#include <torch/torch.h>

#include "model/transformer.h"

namespace lathe {

struct LmLoss {
  torch::Tensor loss_sum;  // scalar f32, sum of -log p(target) over scored positions
  int64_t tokens = 0;      // N
  int64_t correct = 0;     // argmax == target (-1 when not counted)
};

// input_ids, attention_mask, labels [B, T] int64 (labels -100 = not scored; right padding).
// count_correct = false skips the argmax pass over the logits (training steps log no accuracy).
// share_prefix: when the rows begin with the same tokens and labels (an SFT batch's system
// prompt), that prefix runs once for the batch (CausalLM::forward_shared_prefix) and its
// scored positions count once per row; the loss and gradients equal the whole-row ones up to
// rounding. LoRA dropout then draws one mask for the prefix, not one per row.
LmLoss causal_lm_loss(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const torch::Tensor& labels, bool count_correct = true, bool share_prefix = true);
// The number of leading positions whose ids and labels are equal in every row, leaving each
// row at least one token of its own; 0 for a single row.
int64_t shared_prefix_length(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& labels);
LmLoss causal_lm_loss_reference(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const torch::Tensor& labels);

// hidden [N, C], weight [V, C] (the lm_head's), targets [N] int64 -> sum over rows of
// -log softmax(hidden W^T)[target] (f32 scalar, differentiable in hidden and weight) and the
// count of rows whose argmax is the target. chunk_rows = 0 sizes chunks to ~512 MB of f32
// logits: large enough that each chunk's sgemm amortises packing the head (docs/sft.md).
LmLoss linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                            int64_t chunk_rows = 0, bool count_correct = true);

}  // namespace lathe
