#include "model/bf16_decode_linear.h"

#include <ATen/Parallel.h>

#include <cstdint>

#include "model/bf16_decode_kernels.h"

namespace lathe {
namespace {

// Below this many multiply-adds one thread is cheaper than waking another (the tiny shape's
// 256 x 256 projections stay on one).
constexpr int64_t kParallelMacs = int64_t(1) << 20;

}  // namespace

bool bf16_decode_linear_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!x.device().is_cpu() || x.scalar_type() != torch::kBFloat16 || weight.scalar_type() != torch::kBFloat16 ||
      !weight.device().is_cpu() || weight.dim() != 2 || !weight.is_contiguous() || x.dim() < 1 ||
      x.size(-1) != weight.size(1) || x.size(-1) == 0)
    return false;
  if (bias.defined() && (bias.scalar_type() != torch::kBFloat16 || bias.dim() != 1 || bias.size(0) != weight.size(0)))
    return false;
  const int64_t rows = x.numel() / x.size(-1);
  if (rows < 1 || rows > kBf16DecodeMaxRows) return false;
  const bool needs_grad = at::GradMode::is_enabled() &&
                          (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  return !needs_grad;
}

bool bf16_decode_kernel_available(Bf16DecodeKernel kernel) {
  static const Bf16DecodeIsa best = bf16_decode_best_isa();
  switch (kernel) {
    case Bf16DecodeKernel::avx512: return best == Bf16DecodeIsa::avx512;
    case Bf16DecodeKernel::avx2: return best == Bf16DecodeIsa::avx512 || best == Bf16DecodeIsa::avx2;
    default: return true;
  }
}

torch::Tensor bf16_decode_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                 Bf16DecodeKernel kernel) {
  static const Bf16DecodeIsa best = bf16_decode_best_isa();
  TORCH_CHECK(bf16_decode_kernel_available(kernel), "bf16_decode_linear: this CPU cannot run the kernel asked for");
  const Bf16DecodeIsa isa = kernel == Bf16DecodeKernel::avx512 ? Bf16DecodeIsa::avx512
                            : kernel == Bf16DecodeKernel::avx2 ? Bf16DecodeIsa::avx2
                            : kernel == Bf16DecodeKernel::scalar ? Bf16DecodeIsa::scalar
                                                                 : best;
  const int64_t in = weight.size(1), out_features = weight.size(0);
  const int64_t rows = x.numel() / in;
  const auto xc = x.contiguous();
  const auto bc = bias.defined() ? bias.contiguous() : torch::Tensor();
  auto sizes = x.sizes().vec();
  sizes.back() = out_features;
  auto y = torch::empty(sizes, x.options());
  auto bits = [](const torch::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); };
  const int threads = rows * out_features * in < kParallelMacs ? 1 : at::get_num_threads();
  bf16_rows_product(isa, bits(weight), out_features, in, bits(xc), rows, bc.defined() ? bits(bc) : nullptr,
                    reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()), threads);
  return y;
}

}  // namespace lathe
