#include "model/fast_linear.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace lathe {

torch::Tensor linear_reference(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return torch::nn::functional::linear(x, weight, bias);
}

bool linear_uses_gemv(const torch::Tensor& x, const torch::Tensor& weight) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && weight.scalar_type() == torch::kFloat32 &&
         x.dim() >= 1 && x.numel() == x.size(-1) && weight.dim() == 2 && weight.is_contiguous();
}

namespace {

// Large weights: split the output rows over LibTorch's threads, one single-threaded sgemv
// each. OpenBLAS runs with one thread (core/runtime.cpp), so its gemv alone would stream the
// weights from one core; decode of a 0.5B model is bound by that stream.
constexpr int64_t kParallelWeightElements = int64_t(1) << 20;

torch::Tensor parallel_gemv(const torch::Tensor& weight, const torch::Tensor& x, const torch::Tensor& bias) {
  const int64_t out = weight.size(0), in = weight.size(1);
  auto y = torch::empty({out}, x.options());
  const bool inference = c10::InferenceMode::is_enabled();
  at::parallel_for(0, out, std::max<int64_t>(1, kParallelWeightElements / 4 / in), [&](int64_t begin, int64_t end) {
    // Worker threads do not inherit the caller's inference mode; writing into an
    // inference tensor needs it.
    c10::InferenceMode mode(inference);
    auto part = y.narrow(0, begin, end - begin);
    auto rows = weight.narrow(0, begin, end - begin);
    if (bias.defined()) torch::addmv_out(part, bias.narrow(0, begin, end - begin), rows, x);
    else torch::mv_out(part, rows, x);
  });
  return y;
}

}  // namespace

torch::Tensor linear_base(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!linear_uses_gemv(x, weight)) return linear_reference(x, weight, bias);
  // One row: W [out, in] @ x [in] -> [out], then the caller's leading dims back.
  const auto v = x.reshape({-1});
  const bool needs_grad = at::GradMode::is_enabled() &&
                          (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  torch::Tensor y;
  if (!needs_grad && at::get_num_threads() > 1 && weight.numel() >= kParallelWeightElements)
    y = parallel_gemv(weight, v, bias);  // out= kernels: inference only
  else
    y = bias.defined() ? torch::addmv(bias, weight, v) : torch::mv(weight, v);
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return y.view(sizes);
}

}  // namespace lathe
