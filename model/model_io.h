// Model folders in Hugging Face layout: build a CausalLM from config.json, fill it from
// safetensors (every key and shape checked, missing and unexpected keys listed by name),
// save it back the same way, or initialise random weights for tests and benchmarks.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "model/chat_template.h"
#include "model/hf_config.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

namespace lathe {

// Copies checkpoint tensors into the model's parameters (converting dtype and device).
// Throws lathe::Error listing missing and unexpected keys, or naming a shape mismatch.
void load_weights(CausalLM& model, const std::string& model_dir);

// Writes config.json (torch_dtype = dtype) and model.safetensors (sharded past
// max_shard_bytes; 0 = never), tied embeddings without lm_head.weight as transformers does.
void save_model(CausalLM& model, const std::string& model_dir, torch::ScalarType dtype,
                uint64_t max_shard_bytes = 0);

struct LoadedModel {
  std::string dir;
  ModelConfig config;
  CausalLM model{nullptr};
  std::unique_ptr<Tokenizer> tokenizer;
  ChatTemplate chat;
};

// config + weights (in dtype, on device, eval mode) + tokenizer + chat template.
LoadedModel load_model(const std::string& model_dir, torch::Device device, torch::ScalarType dtype,
                       const std::string& chat_template_override = "");

}  // namespace lathe
