// AutocastScope: matmul-like ops run in bf16 inside it and in f32 outside, nesting restores
// the outer settings, and weights are never converted.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/autocast.h"

namespace lathe {
namespace {

TEST(Autocast, CpuScopeRunsLinearInBf16AndRestores) {
  auto x = torch::randn({3, 8});
  auto w = torch::randn({5, 8});
  const auto exact = torch::matmul(x, w.t());
  EXPECT_FALSE(AutocastState::current().cpu);
  {
    AutocastScope scope(torch::Device(torch::kCPU), torch::kBFloat16);
    EXPECT_TRUE(AutocastState::current().cpu);
    auto y = torch::nn::functional::linear(x, w);
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), exact, 0.02, 0.05));
    EXPECT_EQ(torch::matmul(x, w.t()).scalar_type(), torch::kBFloat16);
    // Precision-sensitive and elementwise ops keep f32.
    EXPECT_EQ(torch::softmax(x, -1).scalar_type(), torch::kFloat32);
    EXPECT_EQ(w.scalar_type(), torch::kFloat32);
    {
      AutocastState off;  // everything disabled
      AutocastScope inner(off);
      EXPECT_EQ(torch::nn::functional::linear(x, w).scalar_type(), torch::kFloat32);
    }
    EXPECT_EQ(torch::nn::functional::linear(x, w).scalar_type(), torch::kBFloat16);
  }
  EXPECT_FALSE(AutocastState::current().cpu);
  EXPECT_EQ(torch::nn::functional::linear(x, w).scalar_type(), torch::kFloat32);
}

TEST(Autocast, GradientsOfF32WeightsStayF32) {
  auto w = torch::randn({5, 8}, torch::requires_grad());
  auto x = torch::randn({3, 8});
  torch::Tensor loss;
  {
    AutocastScope scope(torch::Device(torch::kCPU), torch::kBFloat16);
    loss = torch::nn::functional::linear(x, w).to(torch::kFloat32).pow(2).sum();
  }
  loss.backward();
  EXPECT_EQ(w.grad().scalar_type(), torch::kFloat32);
  EXPECT_EQ(w.scalar_type(), torch::kFloat32);
}

TEST(Autocast, RejectsFullPrecisionDtype) {
  EXPECT_ANY_THROW(AutocastScope(torch::Device(torch::kCPU), torch::kFloat32));
}

}  // namespace
}  // namespace lathe
