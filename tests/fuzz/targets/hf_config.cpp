// Fuzz target: a model folder's config.json, read by ModelConfig::load as every command that
// opens a model does. A config that loads and can be saved must load back to the same values
// (lathe writes config.json into every checkpoint it saves, and resumes from it).
#include <cstdio>
#include <cstdlib>

#include "model/hf_config.h"
#include "tests/fuzz/fuzz_target.h"

namespace lathe::fuzz {

void fuzz_hf_config(const std::string& input) {
  const ModelConfig config = ModelConfig::load(write_scratch_file("config.json", input));
  const nlohmann::json saved = config.to_json();
  ModelConfig again;
  try {
    again = ModelConfig::from_json(saved, "saved config.json");
  } catch (const Error& e) {
    std::fprintf(stderr, "lathe fuzz: a saved config.json does not load again: %s\n%s\n", e.what(), saved.dump().c_str());
    std::abort();
  }
  if (again.to_json() != saved) {
    std::fprintf(stderr, "lathe fuzz: config.json changes in a save/load round trip:\n%s\n%s\n", saved.dump().c_str(),
                 again.to_json().dump().c_str());
    std::abort();
  }
}

}  // namespace lathe::fuzz
