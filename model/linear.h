// Linear layer whose parameters carry Hugging Face names ("weight", "bias"), with room for
// LoRA adapters beside the frozen base weight (model/lora.* attaches them).
// Adapter weights are registered as submodules "lora_A.<adapter>" / "lora_B.<adapter>" each
// holding a "weight" parameter, so named_parameters() shows PEFT's internal names
// ("...q_proj.lora_A.default.weight") and an optimizer can take exactly them.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace lathe {

// A module that holds just one parameter named "weight" (one LoRA factor).
class LoraWeightImpl : public torch::nn::Module {
 public:
  explicit LoraWeightImpl(torch::Tensor value);
  torch::Tensor weight;
};
TORCH_MODULE(LoraWeight);

// One LoRA adapter on one linear: y += scale * B(A(dropout(x))).
struct LoraPair {
  torch::Tensor A;        // [r, in]  (the registered parameter lora_A.<name>.weight)
  torch::Tensor B;        // [out, r] (the registered parameter lora_B.<name>.weight)
  double scale = 1.0;     // alpha / r, or alpha / sqrt(r) with rslora
  double dropout = 0.0;
  bool merged = false;    // scale * B A has been added into `weight`
};

// Which adapters each row of a batch applies, so one batch can serve requests for different
// adapters (the server). Rows in no group run the base weights alone.
struct RowAdapterGroups {
  struct Group {
    std::vector<std::string> adapters;  // applied to these rows; names a layer lacks are skipped
    torch::Tensor rows;                 // [b] int64 row indices, on the model's device
    bool all_rows = false;              // the whole batch: no gather/scatter needed
  };
  int64_t batch = 0;                    // B the groups were made for
  std::vector<Group> groups;
};

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias);

  // x [..., in] -> [..., out]
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  // Registers A [r, in] and B [out, r] as parameters of adapter `name` (requires_grad true).
  void add_adapter(const std::string& name, torch::Tensor A, torch::Tensor B, double scale, double dropout);
  // Unregisters the adapter's parameters (the caller unmerges first if it must).
  void remove_adapter(const std::string& name);
  bool has_adapter(const std::string& name) const { return adapters.count(name) > 0; }

  // W += scale * B A (computed in f32, cast back to W's dtype) and its inverse.
  void merge_adapter(const std::string& name);
  void unmerge_adapter(const std::string& name);

  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined

  // Adapters by name; `active` lists the adapters forward applies (empty = base only).
  // Names in `active` that this layer lacks are skipped, so one model-wide list serves all.
  std::map<std::string, LoraPair> adapters;
  std::vector<std::string> active;
  // When set (model/lora.h RowAdapterScope), forward applies adapters per row by these
  // groups instead of `active`; merged adapters are refused then.
  std::shared_ptr<const RowAdapterGroups> row_adapters;

 private:
  // Containers named "lora_A" / "lora_B", created with the first adapter.
  std::shared_ptr<torch::nn::Module> lora_A_, lora_B_;
  int64_t in_features_, out_features_;
};
TORCH_MODULE(Linear);

}  // namespace lathe
