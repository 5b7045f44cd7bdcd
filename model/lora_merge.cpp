// Merge runs in f32 whatever the stored dtype, and the result is cast once to the output
// dtype, so a bf16 base does not lose the small update to rounding twice. An adapter with
// modules_to_save (embed_tokens, lm_head) brings its own copies of those weights; the merged
// model holds them, which is how such an adapter reaches vLLM.
#include "model/lora_merge.h"

#include <unistd.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/hf_config.h"
#include "model/model_io.h"

namespace lathe {
namespace fs = std::filesystem;

torch::ScalarType dtype_from_name(const std::string& name, const std::string& what) {
  if (name == "f32" || name == "float32") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "f16" || name == "float16") return torch::kFloat16;
  fail(what + " is '" + name + "'; expected f32, bf16 or f16");
}

MergeReport merge_peft_checkpoint(const std::string& model_dir, const std::string& adapter_dir,
                                  const std::string& out_dir, std::optional<torch::ScalarType> dtype) {
  std::error_code same_ec;
  if (fs::equivalent(out_dir, model_dir, same_ec))
    fail("merge output " + out_dir + " is the base model folder; write the merged model elsewhere");
  MergeReport report;
  const ModelConfig config = ModelConfig::load(model_dir);
  report.dtype = dtype ? *dtype : dtype_from_name(config.torch_dtype, model_dir + "/config.json torch_dtype");

  // No tokenizer needed to merge: config + weights only (load_model would insist on one).
  CausalLM model(config);
  load_weights(model, model_dir);
  model->to(torch::kFloat32);
  model->eval();
  PeftLoadOptions load_options;
  load_options.allow_modules_to_save = true;
  report.adapter = load_peft_adapter(model, "merge", adapter_dir, load_options);
  merge_and_unload_adapter(model, "merge");

  // Built beside the destination and renamed into place, so a crash leaves no half folder.
  const std::string out = fs::path(out_dir).lexically_normal().string();
  const std::string tmp = out + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  save_model(model, tmp, report.dtype);
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "generation_config.json",
                        "special_tokens_map.json", "vocab.json", "merges.txt", "chat_template.jinja"}) {
    const fs::path src = fs::path(model_dir) / f;
    if (!fs::exists(src)) continue;
    fs::copy_file(src, fs::path(tmp) / f, fs::copy_options::overwrite_existing, ec);
    if (ec) fail("cannot copy " + src.string() + " to " + tmp + ": " + ec.message());
    report.copied.push_back(f);
  }
  replace_directory_atomic(tmp, out);
  return report;
}

}  // namespace lathe
