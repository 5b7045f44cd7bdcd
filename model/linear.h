// Linear layer whose parameters carry Hugging Face names ("weight", "bias"), with room for
// LoRA adapters beside the frozen base weight (model/lora.* attaches them).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace lathe {

// One LoRA adapter on one linear: y += scale * B(A(dropout(x))).
struct LoraPair {
  torch::Tensor A;        // [r, in]
  torch::Tensor B;        // [out, r]
  double scale = 1.0;     // alpha / r, or alpha / sqrt(r) with rslora
  double dropout = 0.0;
};

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias);

  // x [..., in] -> [..., out]
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined

  // Adapters by name; `active` lists those applied in forward (empty = base only).
  std::map<std::string, LoraPair> adapters;
  std::vector<std::string> active;

 private:
  int64_t in_features_, out_features_;
};
TORCH_MODULE(Linear);

}  // namespace lathe
