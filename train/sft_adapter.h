// The LoRA side of the SFT recipe: the config's lora.* keys -> an adapter named "default" on
// the model (PEFT's default adapter name), saved and loaded in PEFT's folder layout.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/config.h"
#include "model/transformer.h"

namespace lathe {

// Adds the adapter (base frozen) and returns the parameters to train.
std::vector<torch::Tensor> add_sft_adapter(CausalLM& model, const Config& config, uint64_t seed);
// DIR gets adapter_config.json + adapter_model.safetensors.
void save_sft_adapter(CausalLM& model, const Config& config, const std::string& dir);
// Overwrites the added adapter's weights from DIR (a checkpoint's adapter/).
void load_sft_adapter(CausalLM& model, const std::string& dir);

}  // namespace lathe
