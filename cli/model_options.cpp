#include "cli/model_options.h"

#include "core/runtime.h"

namespace lathe::cli {

void add_model_options(CLI::App& command, ModelOptions& o, bool model_required) {
  auto* model = command.add_option("--model", o.model_dir, "Hugging Face model folder (config.json, *.safetensors, tokenizer)");
  if (model_required) model->required();
  command.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  command.add_option("--dtype", o.dtype, "compute dtype: f32, bf16 or f16")->capture_default_str();
  command.add_option("--threads", o.threads, "CPU threads (0 = all available cores)")->capture_default_str();
  command.add_option("--chat-template", o.chat_template,
                     "chat format override: plain, chatml, llama3, llama2, mistral (default: from tokenizer_config.json)");
}

void add_recipe_model_flags(CLI::App& command, RecipeModelFlags& f) {
  command.add_option("--device", f.device, "cpu, cuda or cuda:N (overrides training.device)");
  command.add_option("--dtype", f.dtype, "base weight dtype: f32 or bf16 (overrides model.dtype)");
  command.add_option("--threads", f.threads, "CPU threads, 0 = all cores (overrides training.threads)");
}

void append_recipe_model_overrides(const RecipeModelFlags& f, std::vector<std::string>& overrides) {
  if (!f.device.empty()) overrides.push_back("training.device=" + f.device);
  if (!f.dtype.empty()) overrides.push_back("model.dtype=" + f.dtype);
  if (!f.threads.empty()) overrides.push_back("training.threads=" + f.threads);
}

LoadedModel load_model_from_options(const ModelOptions& o) {
  configure_threads(o.threads);
  return load_model(o.model_dir, parse_device(o.device), parse_dtype(o.dtype), o.chat_template);
}

}  // namespace lathe::cli
