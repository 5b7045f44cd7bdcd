// LoRA for the SFT recipe: see sft_adapter.h. The adapter is named "default" (PEFT's name for
// an unnamed adapter); its parameters appear in named_parameters() as
// "<module>.lora_A.default.weight", which is how a checkpoint's weights are copied back in.
// lora.modules_to_save trains whole embed_tokens / lm_head weights beside the adapter.
#include "train/sft_adapter.h"

#include <filesystem>
#include <map>

#include "core/error.h"
#include "model/lora.h"

namespace lathe {
namespace {

const char* kAdapter = "default";

LoraConfig lora_config(const CausalLM& model, const Config& config) {
  LoraConfig lc;
  lc.r = config.get_int("lora.r");
  lc.alpha = config.get_float("lora.alpha");
  lc.dropout = config.get_float("lora.dropout");
  lc.target_modules = config.get_string_list("lora.target_modules");
  lc.layers_to_transform = config.get_int_list("lora.layers");
  lc.use_rslora = config.get_bool("lora.use_rslora");
  lc.modules_to_save = config.get_string_list("lora.modules_to_save");
  lc.base_model_name_or_path = config.get_string("model.init") == "load" ? config.get_string("model.path") : "";
  return lc;
}

void train_modules_to_save(CausalLM& model, const std::vector<std::string>& names) {
  for (auto& w : modules_to_save_weights(model, names)) w.set_requires_grad(true);
}

}  // namespace

std::vector<torch::Tensor> add_sft_adapter(CausalLM& model, const Config& config, uint64_t seed) {
  const LoraConfig lc = lora_config(model, config);
  auto params = add_lora_adapter(model, kAdapter, lc, seed);  // freezes every base weight
  train_modules_to_save(model, lc.modules_to_save);
  for (auto& w : modules_to_save_weights(model, lc.modules_to_save)) params.push_back(w);
  return params;
}

void save_sft_adapter(CausalLM& model, const Config& config, const std::string& dir) {
  std::filesystem::create_directories(dir);
  save_peft_adapter(model, kAdapter, lora_config(model, config), dir);
}

void load_sft_adapter(CausalLM& model, const std::string& dir) {
  // Loaded beside the live adapter and copied into it, so the optimizer keeps the tensors it
  // was built on.
  const std::string staging = "resume";
  PeftLoadOptions load_options;
  load_options.allow_modules_to_save = true;  // copied straight into the trained weights
  const LoraConfig loaded = load_peft_adapter(model, staging, dir, load_options);
  std::map<std::string, torch::Tensor> params;
  for (auto& p : model->named_parameters(true)) params[p.key()] = p.value();
  {
    torch::NoGradGuard no_grad;
    int64_t copied = 0;
    for (auto& [key, value] : params) {
      const std::string marker = std::string(".") + kAdapter + ".";
      const auto at = key.find(marker);
      if (at == std::string::npos || key.find(".lora_") == std::string::npos) continue;
      const std::string source = key.substr(0, at) + "." + staging + "." + key.substr(at + marker.size());
      auto it = params.find(source);
      if (it == params.end()) fail(dir + ": adapter has no weight for " + key);
      value.copy_(it->second);
      ++copied;
    }
    if (copied == 0) fail(dir + ": no LoRA weights matched the training adapter");
  }
  remove_adapter(model, staging);
  set_active_adapters(model, {kAdapter});
  train_modules_to_save(model, loaded.modules_to_save);  // loading froze every base weight
}

}  // namespace lathe
