#include "model/model_io.h"

#include <filesystem>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/safetensors.h"

namespace lathe {
namespace fs = std::filesystem;

namespace {

// Keys some checkpoints carry that hold no weights lathe needs.
bool ignorable_key(const std::string& key) {
  return key.size() >= 9 && key.compare(key.size() - 9, 9, ".inv_freq") == 0;  // old rotary buffers
}

std::string join_limited(const std::vector<std::string>& names, size_t limit = 8) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

std::string shape_text(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

void load_weights(CausalLM& model, const std::string& model_dir) {
  CheckpointReader reader(model_dir);
  torch::NoGradGuard no_grad;
  auto params = model->named_parameters(/*recurse=*/true);
  std::vector<std::string> missing, unexpected;
  std::set<std::string> expected;
  for (const auto& p : params) expected.insert(p.key());
  for (const auto& name : reader.names())
    if (!expected.count(name) && !ignorable_key(name)) unexpected.push_back(name);
  for (const auto& p : params)
    if (!reader.contains(p.key())) missing.push_back(p.key());
  if (!missing.empty() || !unexpected.empty()) {
    std::string msg = model_dir + ": checkpoint does not match config.json:";
    if (!missing.empty()) msg += " missing keys: " + join_limited(missing) + ";";
    if (!unexpected.empty()) msg += " unexpected keys: " + join_limited(unexpected) + ";";
    if (model->config().tie_word_embeddings && reader.contains("lm_head.weight"))
      msg += " (the checkpoint has lm_head.weight but config.json says tie_word_embeddings: true)";
    fail(msg);
  }
  for (auto& p : params) {
    const auto& entry = reader.entry(p.key());
    if (at::IntArrayRef(entry.shape) != p.value().sizes())
      fail(reader.file_of(p.key()) + ": tensor '" + p.key() + "' has shape " + shape_text(entry.shape) +
           ", config.json implies " + shape_text(p.value().sizes()));
    p.value().copy_(reader.load(p.key()).to(p.value().dtype()));
  }
}

void save_model(CausalLM& model, const std::string& model_dir, torch::ScalarType dtype, uint64_t max_shard_bytes) {
  fs::create_directories(model_dir);
  NamedTensors tensors;
  for (const auto& p : model->named_parameters(true))
    tensors.emplace_back(p.key(), p.value().detach().to(torch::kCPU, dtype).contiguous());
  save_checkpoint_tensors(model_dir, tensors, max_shard_bytes);
  ModelConfig config = model->config();
  config.torch_dtype = dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kFloat16 ? "float16" : "float32";
  write_file_atomic(model_dir + "/config.json", config.to_json().dump(2) + "\n");
}

LoadedModel load_model(const std::string& model_dir, torch::Device device, torch::ScalarType dtype,
                       const std::string& chat_template_override) {
  if (!fs::is_directory(model_dir)) fail(model_dir + ": not a model folder (expected config.json and *.safetensors)");
  LoadedModel loaded;
  loaded.dir = model_dir;
  loaded.config = ModelConfig::load(model_dir);
  loaded.model = CausalLM(loaded.config);
  load_weights(loaded.model, model_dir);
  loaded.model->to(device, dtype);
  loaded.model->eval();
  loaded.tokenizer = load_tokenizer(model_dir);
  loaded.chat = load_chat_template(model_dir, loaded.tokenizer->eos_text(), loaded.tokenizer->bos_text(),
                                   chat_template_override);
  return loaded;
}

}  // namespace lathe
