// Fuzz target: model.safetensors.index.json, the shard map of a sharded checkpoint, in a
// folder that also holds two valid shards (tensors a, b in the first, c in the second). The
// index may only name files inside the folder, and every tensor it lists must be in its shard.
#include <torch/torch.h>

#include "model/safetensors.h"
#include "tests/fuzz/fuzz_target.h"

namespace lathe::fuzz {

void fuzz_checkpoint_index(const std::string& input) {
  static const std::string dir = [] {
    const std::string d = fresh_scratch_dir("sharded");
    save_safetensors(d + "/model-00001-of-00002.safetensors",
                     {{"a", torch::arange(6, torch::kFloat32).view({2, 3})}, {"b", torch::ones({4}, torch::kBFloat16)}});
    save_safetensors(d + "/model-00002-of-00002.safetensors", {{"c", torch::zeros({3, 1}, torch::kInt64)}});
    return d;
  }();
  write_scratch_file("sharded/model.safetensors.index.json", input);
  const CheckpointReader reader(dir);
  for (const auto& name : reader.names()) {
    reader.entry(name);
    reader.file_of(name);
    reader.load(name);
  }
}

}  // namespace lathe::fuzz
