#include "model/linear.h"

#include "model/fast_linear.h"

namespace lathe {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out_features}));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = linear_base(x, weight, bias);
  for (const auto& name : active) {
    const LoraPair& lora = adapters.at(name);
    torch::Tensor h = x;
    if (lora.dropout > 0.0 && is_training())
      h = torch::nn::functional::dropout(h, torch::nn::functional::DropoutFuncOptions().p(lora.dropout).training(true));
    // [..., in] -> [..., r] -> [..., out]
    y = y + torch::nn::functional::linear(torch::nn::functional::linear(h, lora.A), lora.B) * lora.scale;
  }
  return y;
}

}  // namespace lathe
