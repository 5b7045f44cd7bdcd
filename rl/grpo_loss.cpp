#include "rl/grpo_loss.h"

#include "core/error.h"

namespace lathe::rl {

LossType loss_type_from_name(const std::string& name) {
  if (name == "grpo") return LossType::Grpo;
  if (name == "bnpo") return LossType::Bnpo;
  if (name == "dr_grpo") return LossType::DrGrpo;
  if (name == "dapo") return LossType::Dapo;
  fail("loss_type '" + name + "' is not one of grpo, bnpo, dr_grpo, dapo");
}

GrpoLossOutput grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                         const torch::Tensor& advantages, const torch::Tensor& mask, const GrpoLossOptions& options,
                         const LossTotals& totals) {
  if (options.beta != 0.0 && !ref_logp.defined()) fail("grpo_loss: beta != 0 needs reference log-probs");
  if (totals.sequences < 1) fail("grpo_loss: the step has no sequences");
  const int64_t N = logp.size(0);
  auto m = mask.to(logp.scalar_type());
  auto old = old_logp.defined() ? old_logp : logp.detach();
  auto A = advantages.to(logp.scalar_type()).unsqueeze(1);                          // [N, 1]
  auto ratio = torch::exp(logp - old);                                              // [N, T]
  auto clipped = torch::clamp(ratio, 1.0 - options.epsilon_low, 1.0 + options.epsilon_high);
  auto per_token = -torch::min(ratio * A, clipped * A);
  torch::Tensor kl;
  if (options.beta != 0.0) {
    auto d = ref_logp - logp;
    kl = torch::exp(d) - d - 1.0;
    per_token = per_token + options.beta * kl;
  }

  torch::Tensor loss;
  const auto masked_sum = (per_token * m).sum();
  switch (options.loss_type) {
    case LossType::Grpo:
      loss = ((per_token * m).sum(1) / m.sum(1).clamp_min(1.0)).sum() / static_cast<double>(totals.sequences);
      break;
    case LossType::Bnpo:
      loss = masked_sum / m.sum().clamp_min(1.0) * (static_cast<double>(N) / static_cast<double>(totals.sequences));
      break;
    case LossType::DrGrpo:
      if (options.max_completion_length < 1) fail("grpo_loss: dr_grpo needs max_completion_length >= 1");
      loss = masked_sum / static_cast<double>(totals.sequences * options.max_completion_length);
      break;
    case LossType::Dapo:
      loss = masked_sum / std::max(totals.active_tokens, 1.0);
      break;
  }

  GrpoLossOutput out;
  out.loss = loss;
  torch::NoGradGuard no_grad;
  auto r = ratio.detach();
  out.token_count = m.sum().item<double>();
  if (kl.defined()) out.kl_sum = (kl.detach() * m).sum().item<double>();
  out.low_clip_sum = (((r < 1.0 - options.epsilon_low) & (A < 0)).to(m.scalar_type()) * m).sum().item<double>();
  out.high_clip_sum = (((r > 1.0 + options.epsilon_high) & (A > 0)).to(m.scalar_type()) * m).sum().item<double>();
  out.ratio_sum = (r * m).sum().item<double>();
  return out;
}

}  // namespace lathe::rl
