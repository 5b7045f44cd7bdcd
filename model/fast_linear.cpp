#include "model/fast_linear.h"

namespace lathe {

torch::Tensor linear_reference(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return torch::nn::functional::linear(x, weight, bias);
}

bool linear_uses_gemv(const torch::Tensor& x, const torch::Tensor& weight) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && weight.scalar_type() == torch::kFloat32 &&
         x.dim() >= 1 && x.numel() == x.size(-1) && weight.dim() == 2 && weight.is_contiguous();
}

torch::Tensor linear_base(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!linear_uses_gemv(x, weight)) return linear_reference(x, weight, bias);
  // One row: W [out, in] @ x [in] -> [out], then the caller's leading dims back.
  auto y = bias.defined() ? torch::addmv(bias, weight, x.reshape({-1})) : torch::mv(weight, x.reshape({-1}));
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return y.view(sizes);
}

}  // namespace lathe
