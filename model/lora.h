// LoRA adapters on the attention and MLP linears, in PEFT's layout.
// y = W x (+ b) + scale * B A dropout(x); A [r, in] Kaiming-uniform (a = sqrt(5)),
// B [out, r] zeros; scale = alpha / r, or alpha / sqrt(r) with rslora.
// Adapters are registered as parameters named like PEFT's internal names
// ("model.layers.0.self_attn.q_proj.lora_A.<adapter>.weight"), so named_parameters() shows
// them and an optimizer can take exactly them. Saved files follow ../shared/docs/INTEROP.md:
// adapter_config.json + adapter_model.safetensors with keys
// "base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight" (no adapter name).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/transformer.h"

namespace lathe {

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16;
  double dropout = 0.0;
  std::vector<std::string> target_modules{"q_proj", "v_proj"};  // of q,k,v,o,gate,up,down _proj
  std::vector<int64_t> layers_to_transform;                      // empty = every layer
  bool use_rslora = false;
  std::string base_model_name_or_path;
  double scale() const;
};

// The seven projection names LoRA may target.
const std::vector<std::string>& lora_target_names();

// Adds adapter `name` (fresh weights, seeded) to every targeted linear, freezes all base
// parameters, and returns the adapter's parameters. Throws lathe::Error if no module
// matches, a target name is unknown, or the name is taken.
std::vector<torch::Tensor> add_lora_adapter(CausalLM& model, const std::string& name, const LoraConfig& config,
                                            uint64_t seed);

// Which adapters forward() applies ({} = the base model alone).
void set_active_adapters(CausalLM& model, const std::vector<std::string>& names);
std::vector<std::string> active_adapters(CausalLM& model);

// While alive, the model runs as the base (GRPO's reference policy without a second copy).
class AdaptersDisabled {
 public:
  explicit AdaptersDisabled(CausalLM& model);
  ~AdaptersDisabled();
 private:
  CausalLM& model_;
  std::vector<std::string> saved_;
};

// W += scale * B A (in f32, cast back), and its exact inverse for the same weights.
void merge_adapter(CausalLM& model, const std::string& name);
void unmerge_adapter(CausalLM& model, const std::string& name);
void remove_adapter(CausalLM& model, const std::string& name);

// PEFT folder: adapter_config.json (every PEFT field) + adapter_model.safetensors.
void save_peft_adapter(CausalLM& model, const std::string& name, const LoraConfig& config, const std::string& dir);
// Loads DIR as adapter `name`; every tensor's target and shape checked against the model.
LoraConfig load_peft_adapter(CausalLM& model, const std::string& name, const std::string& dir);

}  // namespace lathe
