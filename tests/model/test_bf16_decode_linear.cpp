// The bf16 few-row decode product (model/bf16_decode_linear.h): every kernel this CPU runs,
// for 1 to 8 rows, with and without bias, lengths that leave vector and row-block tails, 3-D
// inputs, against the f32 product of the same bf16 values (error at most bf16's rounding);
// the threaded split equal bit for bit to one thread; when it applies; and that linear_base
// takes it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include "model/bf16_decode_linear.h"
#include "model/fast_linear.h"

namespace lathe {
namespace {

namespace F = torch::nn::functional;

// y must be the exact f32 product rounded once to bf16: within half a bf16 ulp (2^-9
// relative) plus the f32 summation-order difference.
void expect_rounded_product(const torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& w,
                            const torch::Tensor& b, const std::string& what) {
  const auto exact = F::linear(x.to(torch::kFloat64), w.to(torch::kFloat64),
                               b.defined() ? b.to(torch::kFloat64) : torch::Tensor());
  ASSERT_EQ(y.sizes(), exact.sizes()) << what;
  ASSERT_EQ(y.scalar_type(), torch::kBFloat16) << what;
  const auto err = (y.to(torch::kFloat64) - exact).abs();
  const auto bound = exact.abs() * std::ldexp(1.0, -8) + 1e-4;
  EXPECT_TRUE((err <= bound).all().item<bool>()) << what << ": worst error " << err.max().item<double>();
}

std::vector<Bf16DecodeKernel> kernels_here() {
  std::vector<Bf16DecodeKernel> kernels;
  for (auto k : {Bf16DecodeKernel::avx512, Bf16DecodeKernel::avx2, Bf16DecodeKernel::scalar})
    if (bf16_decode_kernel_available(k)) kernels.push_back(k);
  return kernels;
}

TEST(Bf16DecodeLinear, EveryKernelEqualsTheRoundedProduct) {
  torch::manual_seed(11);
  // in = 75: a 16-wide and an 8-wide tail; out = 37: a row-block tail for every block size.
  for (const int64_t in : {75, 64}) {
    const auto w = torch::randn({37, in}).to(torch::kBFloat16);
    const auto b = torch::randn({37}).to(torch::kBFloat16);
    for (int64_t rows = 1; rows <= kBf16DecodeMaxRows; ++rows) {
      const auto x = torch::randn({rows, in}).to(torch::kBFloat16);
      for (const auto kernel : kernels_here())
        for (const bool with_bias : {true, false}) {
          const torch::Tensor bias = with_bias ? b : torch::Tensor();
          expect_rounded_product(bf16_decode_linear(x, w, bias, kernel), x, w, bias,
                                 "in " + std::to_string(in) + ", rows " + std::to_string(rows) + ", kernel " +
                                     std::to_string(static_cast<int>(kernel)) + (with_bias ? ", bias" : ""));
        }
    }
  }
}

TEST(Bf16DecodeLinear, KeepsLeadingDimensions) {
  torch::manual_seed(12);
  const auto w = torch::randn({19, 40}).to(torch::kBFloat16);
  const auto x = torch::randn({2, 3, 40}).to(torch::kBFloat16);
  const auto y = bf16_decode_linear(x, w, {});
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 19}));
  expect_rounded_product(y, x, w, {}, "[2, 3, 40]");
}

TEST(Bf16DecodeLinear, ThreadedSplitEqualsOneThreadBitForBit) {
  torch::manual_seed(13);
  const int threads = at::get_num_threads();
  const auto w = torch::randn({4099, 512}).to(torch::kBFloat16);  // 2M multiply-adds: split
  const auto b = torch::randn({4099}).to(torch::kBFloat16);
  for (const int64_t rows : {1, 3, 8}) {
    const auto x = torch::randn({rows, 512}).to(torch::kBFloat16);
    at::set_num_threads(1);
    const auto one = bf16_decode_linear(x, w, b);
    at::set_num_threads(std::max(2, threads));
    const auto many = bf16_decode_linear(x, w, b);
    at::set_num_threads(threads);
    EXPECT_TRUE(torch::equal(one, many)) << rows << " rows";
    expect_rounded_product(many, x, w, b, std::to_string(rows) + " rows, threaded");
  }
}

TEST(Bf16DecodeLinear, AppliesOnlyToFewBf16RowsWithoutGradient) {
  const auto w = torch::randn({16, 32}).to(torch::kBFloat16);
  const auto x = torch::randn({8, 32}).to(torch::kBFloat16);
  EXPECT_TRUE(bf16_decode_linear_applies(x, w, {}));
  EXPECT_TRUE(bf16_decode_linear_applies(x, w, torch::zeros({16}, torch::kBFloat16)));
  EXPECT_FALSE(bf16_decode_linear_applies(torch::randn({9, 32}).to(torch::kBFloat16), w, {}));
  EXPECT_FALSE(bf16_decode_linear_applies(x.to(torch::kFloat32), w, {}));
  EXPECT_FALSE(bf16_decode_linear_applies(x, w.to(torch::kFloat32), {}));
  EXPECT_FALSE(bf16_decode_linear_applies(x, w, torch::zeros({16})));             // f32 bias
  EXPECT_FALSE(bf16_decode_linear_applies(x, w.t().contiguous().t(), {}));         // strided weight
  EXPECT_FALSE(bf16_decode_linear_applies(x.clone().requires_grad_(), w, {}));     // training
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(bf16_decode_linear_applies(x.clone().requires_grad_(), w, {}));
  }
}

TEST(Bf16DecodeLinear, LinearBaseTakesItForDecodeRows) {
  torch::manual_seed(14);
  const auto w = torch::randn({33, 48}).to(torch::kBFloat16);
  const auto b = torch::randn({33}).to(torch::kBFloat16);
  const auto x = torch::randn({4, 1, 48}).to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(linear_base(x, w, b), bf16_decode_linear(x, w, b)));
}

}  // namespace
}  // namespace lathe
