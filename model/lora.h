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

#include <memory>
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
  // Whole modules trained beside the adapter and saved in it, PEFT's modules_to_save:
  // "embed_tokens", "lm_head". PEFT loads such an adapter; vLLM does not (it takes only
  // lora_A/lora_B of the linear projections), so it is served after `lathe merge`.
  std::vector<std::string> modules_to_save;
  double scale() const;
};

// The seven projection names LoRA may target.
const std::vector<std::string>& lora_target_names();
// The modules modules_to_save may name: embed_tokens, lm_head.
const std::vector<std::string>& lora_modules_to_save_names();
// Their weights in this model, for an optimizer (requires_grad is left to the caller).
// Throws for an unknown name, and for lm_head when the model ties it to embed_tokens.
std::vector<torch::Tensor> modules_to_save_weights(CausalLM& model, const std::vector<std::string>& names);

// Adds adapter `name` (fresh weights, seeded) to every targeted linear, freezes all base
// parameters, appends `name` to the active adapters, and returns the adapter's parameters.
// Throws lathe::Error if no module matches, a target name is unknown, or the name is taken.
std::vector<torch::Tensor> add_lora_adapter(CausalLM& model, const std::string& name, const LoraConfig& config,
                                            uint64_t seed);

// The adapter's parameters (A and B of every module it sits on), e.g. for an optimizer
// after load_peft_adapter. Throws if the model has no adapter `name`.
std::vector<torch::Tensor> lora_parameters(CausalLM& model, const std::string& name);
// Names of the adapters the model carries, sorted.
std::vector<std::string> adapter_names(CausalLM& model);

// Which adapters forward() applies ({} = the base model alone). Unknown names throw.
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

// Groups the rows of a batch by adapter: row b applies adapter_per_row[b] alone, or, where
// that is "", the model's active adapters. Unknown names throw. The groups' row indices live
// on the model's device; build them once per batch composition.
std::shared_ptr<const RowAdapterGroups> row_adapter_groups(CausalLM& model,
                                                           const std::vector<std::string>& adapter_per_row);

// While alive, every forward applies adapters per row by `groups` (requests for different
// adapters share one batch). Adapters must not be merged meanwhile.
class RowAdapterScope {
 public:
  RowAdapterScope(CausalLM& model, std::shared_ptr<const RowAdapterGroups> groups);
  ~RowAdapterScope();
  RowAdapterScope(const RowAdapterScope&) = delete;
  RowAdapterScope& operator=(const RowAdapterScope&) = delete;
 private:
  CausalLM& model_;
};

// W += scale * B A (in f32, cast back), and its exact inverse for the same weights.
// A merged adapter is not applied again by forward(); while inactive it is subtracted.
void merge_adapter(CausalLM& model, const std::string& name);
void unmerge_adapter(CausalLM& model, const std::string& name);
// Removes the adapter's parameters; a merged adapter is unmerged first (W back to the base).
void remove_adapter(CausalLM& model, const std::string& name);
// Merges the adapter and drops its parameters, keeping the merged W (what `lathe merge`
// saves: named_parameters() then holds base names only).
void merge_and_unload_adapter(CausalLM& model, const std::string& name);

// PEFT folder: adapter_config.json (every PEFT field) + adapter_model.safetensors, with the
// full weights of config.modules_to_save under PEFT's keys
// ("base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight").
void save_peft_adapter(CausalLM& model, const std::string& name, const LoraConfig& config, const std::string& dir);

struct PeftLoadOptions {
  // Accept modules_to_save (embed_tokens, lm_head) and copy them over the model's own
  // weights (PEFT keeps both copies and switches with the adapter; lathe has one, so
  // disabling the adapter does not bring the old ones back). Off by default: vLLM refuses
  // such adapters, and a server must not overwrite its base's embeddings for every request.
  bool allow_modules_to_save = false;
};

// Loads DIR as adapter `name` (active, base frozen); every tensor's target and shape is
// checked against the model.
LoraConfig load_peft_adapter(CausalLM& model, const std::string& name, const std::string& dir,
                             const PeftLoadOptions& options = {});

}  // namespace lathe
