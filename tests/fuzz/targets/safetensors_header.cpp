// Fuzz target: a .safetensors file as a model or adapter folder holds it. The reader must
// validate the whole header (length, JSON, dtypes, shapes, offsets, coverage) before any
// tensor is read; then every tensor is loaded as model_io does, which must stay inside the
// mapping.
#include "model/safetensors.h"
#include "tests/fuzz/fuzz_target.h"

namespace lathe::fuzz {

void fuzz_safetensors_header(const std::string& input) {
  const SafetensorsFile file(write_scratch_file("model.safetensors", input));
  for (const auto& name : file.names()) {
    const SafetensorsEntry& entry = file.entry(name);
    const torch::Tensor t = file.load(name);
    if (static_cast<uint64_t>(t.numel()) * t.element_size() != entry.end - entry.begin) {
      std::fprintf(stderr, "lathe fuzz: tensor '%s' loaded %lld elements for %llu bytes\n", name.c_str(),
                   static_cast<long long>(t.numel()), static_cast<unsigned long long>(entry.end - entry.begin));
      std::abort();
    }
  }
}

}  // namespace lathe::fuzz
