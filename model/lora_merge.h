// Folding a PEFT LoRA adapter into its base checkpoint (what `lathe merge` runs): the result
// is a plain Hugging Face model folder that needs no adapter support to serve.
#pragma once
#include <torch/types.h>

#include <optional>
#include <string>

#include "model/lora.h"

namespace lathe {

struct MergeReport {
  LoraConfig adapter;                // the adapter's config as loaded
  torch::ScalarType dtype;           // stored dtype of the output
  std::vector<std::string> copied;   // tokenizer and generation files copied beside it
};

// Loads model_dir in f32, loads and merges the adapter in f32, saves to out_dir in `dtype`
// (default: the base's config torch_dtype) and copies tokenizer files. out_dir is built in
// a temporary folder and renamed into place. Throws lathe::Error naming the bad file/key.
MergeReport merge_peft_checkpoint(const std::string& model_dir, const std::string& adapter_dir,
                                  const std::string& out_dir, std::optional<torch::ScalarType> dtype = std::nullopt);

// "f32"/"float32", "bf16"/"bfloat16", "f16"/"float16"; `what` names the source in errors.
torch::ScalarType dtype_from_name(const std::string& name, const std::string& what);

}  // namespace lathe
