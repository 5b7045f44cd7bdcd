// The GRPO loss against a direct double-precision computation (plain loops, no tensors) for
// every aggregation, with clipping on both sides, a KL term, a fully masked row and uneven
// lengths; micro-batch contributions summing to the full-batch loss; and the gradient at
// ρ = 1 against its closed form.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "rl/grpo_loss.h"

namespace lathe::rl {
namespace {

struct Batch {
  torch::Tensor logp, old_logp, ref_logp, adv, mask;  // f64
};

Batch make_batch() {
  torch::manual_seed(7);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  Batch b;
  b.logp = -torch::rand({4, 5}, f64) * 3;
  // Old log-probs far enough off that some ratios leave [0.8, 1.2] on both sides.
  b.old_logp = b.logp + torch::randn({4, 5}, f64) * 0.4;
  b.ref_logp = b.logp + torch::randn({4, 5}, f64) * 0.3;
  b.adv = torch::tensor({1.5, -0.7, 0.3, -1.1}, f64);
  b.mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0}, f64).view({4, 5});
  return b;
}

// ℓ and the aggregation written out element by element.
double direct_loss(const Batch& b, const GrpoLossOptions& o) {
  auto lp = b.logp.accessor<double, 2>();
  auto old = b.old_logp.accessor<double, 2>();
  auto ref = b.ref_logp.accessor<double, 2>();
  auto m = b.mask.accessor<double, 2>();
  auto adv = b.adv.accessor<double, 1>();
  const int64_t N = b.logp.size(0), T = b.logp.size(1);
  double total = 0, tokens = 0, seq_mean_sum = 0;
  for (int64_t i = 0; i < N; ++i) {
    double row = 0, row_tokens = 0;
    for (int64_t t = 0; t < T; ++t) {
      const double rho = std::exp(lp[i][t] - old[i][t]);
      const double clipped = std::min(std::max(rho, 1 - o.epsilon_low), 1 + o.epsilon_high);
      double l = -std::min(rho * adv[i], clipped * adv[i]);
      const double d = ref[i][t] - lp[i][t];
      l += o.beta * (std::exp(d) - d - 1);
      row += l * m[i][t];
      row_tokens += m[i][t];
    }
    total += row;
    tokens += row_tokens;
    seq_mean_sum += row / std::max(row_tokens, 1.0);
  }
  switch (o.loss_type) {
    case LossType::Grpo: return seq_mean_sum / N;
    case LossType::Bnpo: return total / tokens;
    case LossType::DrGrpo: return total / (N * o.max_completion_length);
    case LossType::Dapo: return total / tokens;
  }
  return 0;
}

const std::vector<LossType> kTypes{LossType::Grpo, LossType::Bnpo, LossType::DrGrpo, LossType::Dapo};

GrpoLossOptions options_for(LossType type) {
  GrpoLossOptions o;
  o.epsilon_low = 0.2;
  o.epsilon_high = 0.28;
  o.beta = 0.04;
  o.loss_type = type;
  o.max_completion_length = 6;
  return o;
}

TEST(GrpoLoss, EqualsDirectComputationForEachAggregation) {
  const Batch b = make_batch();
  const LossTotals totals{4, b.mask.sum().item<double>()};
  for (LossType type : kTypes) {
    const auto o = options_for(type);
    const auto out = grpo_loss(b.logp, b.old_logp, b.ref_logp, b.adv, b.mask, o, totals);
    EXPECT_NEAR(out.loss.item<double>(), direct_loss(b, o), 1e-12) << static_cast<int>(type);
    EXPECT_EQ(out.token_count, 11);
    EXPECT_GT(out.low_clip_sum + out.high_clip_sum, 0) << "the batch should exercise clipping";
  }
}

TEST(GrpoLoss, ClipCountsFollowTrl) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // ρ = e^0.5 > 1.28 with A > 0: high-clipped; ρ = e^−0.5 < 0.8 with A < 0: low-clipped;
  // ρ = e^0.5 with A < 0 is outside the region but not clipped (min picks the unclipped).
  auto logp = torch::tensor({0.5, -0.5, 0.5}, f64).view({3, 1});
  auto old = torch::zeros({3, 1}, f64);
  auto adv = torch::tensor({1.0, -1.0, -1.0}, f64);
  auto o = options_for(LossType::Dapo);
  o.beta = 0;
  auto out = grpo_loss(logp, old, {}, adv, torch::ones({3, 1}, f64), o, {3, 3});
  EXPECT_EQ(out.high_clip_sum, 1);
  EXPECT_EQ(out.low_clip_sum, 1);
}

TEST(GrpoLoss, MicroBatchesSumToTheFullBatch) {
  const Batch b = make_batch();
  const LossTotals totals{4, b.mask.sum().item<double>()};
  for (LossType type : {LossType::Grpo, LossType::DrGrpo, LossType::Dapo}) {
    const auto o = options_for(type);
    double parts = 0;
    for (int64_t begin : {0, 2}) {
      auto s = [&](const torch::Tensor& t) { return t.narrow(0, begin, 2); };
      parts += grpo_loss(s(b.logp), s(b.old_logp), s(b.ref_logp), s(b.adv), s(b.mask), o, totals).loss.item<double>();
    }
    EXPECT_NEAR(parts, direct_loss(b, o), 1e-12) << static_cast<int>(type);
  }
}

TEST(GrpoLoss, GradientAtRatioOneIsClosedForm) {
  // μ = 1: old = logp detached, so ρ = 1 and dℓ/dlogp = −A + β(1 − e^(ref − logp)).
  const Batch b = make_batch();
  const LossTotals totals{4, b.mask.sum().item<double>()};
  for (LossType type : kTypes) {
    const auto o = options_for(type);
    auto logp = b.logp.clone().requires_grad_(true);
    auto out = grpo_loss(logp, {}, b.ref_logp, b.adv, b.mask, o, totals);
    out.loss.backward();
    EXPECT_NEAR(out.ratio_sum, out.token_count, 1e-12);
    auto per_token = (-b.adv.unsqueeze(1) + o.beta * (1 - torch::exp(b.ref_logp - b.logp))) * b.mask;
    torch::Tensor norm;
    switch (type) {
      case LossType::Grpo: norm = b.mask.sum(1, true).clamp_min(1) * 4; break;
      case LossType::Bnpo:
      case LossType::Dapo: norm = b.mask.sum().expand({4, 1}); break;
      case LossType::DrGrpo: norm = torch::full({4, 1}, 4.0 * 6, b.mask.options()); break;
    }
    EXPECT_TRUE(torch::allclose(logp.grad(), per_token / norm, 1e-12, 1e-14)) << static_cast<int>(type);
  }
}

TEST(GrpoLoss, BetaZeroNeedsNoReferenceAndBetaNeedsOne) {
  const Batch b = make_batch();
  auto o = options_for(LossType::Grpo);
  EXPECT_THROW(grpo_loss(b.logp, b.old_logp, {}, b.adv, b.mask, o, {4, 11}), Error);
  o.beta = 0;
  const auto out = grpo_loss(b.logp, b.old_logp, {}, b.adv, b.mask, o, {4, 11});
  EXPECT_EQ(out.kl_sum, 0);
  EXPECT_NEAR(out.loss.item<double>(), direct_loss(b, o), 1e-12);
}

TEST(GrpoLoss, ReferenceEqualToPolicyGivesZeroKl) {
  const Batch b = make_batch();
  auto o = options_for(LossType::Dapo);
  const auto out = grpo_loss(b.logp, {}, b.logp.clone(), b.adv, b.mask, o, {4, 11});
  EXPECT_EQ(out.kl_sum, 0.0);
}

}  // namespace
}  // namespace lathe::rl
