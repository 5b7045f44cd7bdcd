// `lathe merge --model DIR --adapter DIR --out DIR [--dtype f32|bf16|f16]`: a base checkpoint
// plus a PEFT LoRA adapter -> a full Hugging Face checkpoint (model/lora_merge.h does the work).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "model/lora_merge.h"

namespace lathe::cli {

namespace {

struct MergeOptions {
  std::string model_dir, adapter_dir, out_dir, dtype;
};

const char* dtype_text(torch::ScalarType t) {
  return t == torch::kFloat32 ? "float32" : t == torch::kBFloat16 ? "bfloat16" : "float16";
}

}  // namespace

void register_merge(CLI::App& app) {
  auto opts = std::make_shared<MergeOptions>();
  auto* cmd = app.add_subcommand("merge", "merge a PEFT LoRA adapter into its base model (full HF checkpoint)");
  cmd->add_option("--model", opts->model_dir, "base model folder (config.json + safetensors)")->required();
  cmd->add_option("--adapter", opts->adapter_dir, "PEFT adapter folder (adapter_config.json + adapter_model.safetensors)")
      ->required();
  cmd->add_option("--out", opts->out_dir, "output folder for the merged checkpoint")->required();
  cmd->add_option("--dtype", opts->dtype, "stored dtype of the output (default: the base's torch_dtype)")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}));
  cmd->callback([opts] {
    std::optional<torch::ScalarType> dtype;
    if (!opts->dtype.empty()) dtype = dtype_from_name(opts->dtype, "--dtype");
    const MergeReport r = merge_peft_checkpoint(opts->model_dir, opts->adapter_dir, opts->out_dir, dtype);
    std::printf("merged %s (r=%lld, lora_alpha=%g) into %s -> %s (%s; copied %zu tokenizer/generation files)\n",
                opts->adapter_dir.c_str(), (long long)r.adapter.r, r.adapter.alpha, opts->model_dir.c_str(),
                opts->out_dir.c_str(), dtype_text(r.dtype), r.copied.size());
  });
}

}  // namespace lathe::cli
