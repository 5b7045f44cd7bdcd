// The GRPO objective per token, as TRL computes it (../shared/docs/INTEROP.md):
//   ρ = exp(logp − logp_old)
//   ℓ = −min(ρ·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A) + β·KL,  KL = exp(ref − logp) − (ref − logp) − 1 (k3)
// aggregated over completion tokens (mask m) by loss_type:
//   grpo     mean over each sequence's tokens, then over sequences (DeepSeekMath)
//   bnpo     Σ ℓ·m / Σ m over the micro-batch
//   dr_grpo  Σ ℓ·m / (sequences × max_completion_length)
//   dapo     Σ ℓ·m / active tokens of the whole step
// A step's rollout batch may be split into micro-batches (gradient accumulation). Each
// micro-batch's loss is scaled so the micro-batch losses sum to the whole batch's loss —
// for grpo, dr_grpo and dapo that is exactly the full-batch formula; bnpo stays normalised per
// micro-batch and weighted by its share of sequences, which is what TRL's gradient accumulation
// does with it.
//
// Legend: N sequences of the micro-batch, T completion width.
#pragma once
#include <torch/torch.h>

#include <string>

namespace lathe::rl {

enum class LossType { Grpo, Bnpo, DrGrpo, Dapo };
LossType loss_type_from_name(const std::string& name);  // grpo | bnpo | dr_grpo | dapo

struct GrpoLossOptions {
  double epsilon_low = 0.2;
  double epsilon_high = 0.2;
  double beta = 0.0;                    // 0: no KL term (and no reference pass)
  LossType loss_type = LossType::Dapo;
  int64_t max_completion_length = 0;    // dr_grpo's constant normaliser
};

// The whole step's size, for normalisers that span micro-batches.
struct LossTotals {
  int64_t sequences = 0;     // completions in the step
  double active_tokens = 0;  // Σ m over the step
};

struct GrpoLossOutput {
  torch::Tensor loss;  // scalar, this micro-batch's contribution
  // Masked statistics over this micro-batch's tokens (detached doubles; sums for merging).
  double token_count = 0;
  double kl_sum = 0;          // Σ KL·m (0 with β = 0)
  double low_clip_sum = 0;    // tokens with ρ < 1 − ε_low and A < 0
  double high_clip_sum = 0;   // tokens with ρ > 1 + ε_high and A > 0
  double ratio_sum = 0;       // Σ ρ·m
};

// logp [N, T] (with gradient); old_logp [N, T] or undefined (= logp detached: ρ is 1 in value,
// the gradient still flows); ref_logp [N, T] or undefined (required when β != 0);
// advantages [N]; mask [N, T] (0/1).
GrpoLossOutput grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                         const torch::Tensor& advantages, const torch::Tensor& mask, const GrpoLossOptions& options,
                         const LossTotals& totals);

}  // namespace lathe::rl
